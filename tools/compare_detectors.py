"""Compare face detectors: recall on photos with known faces (300-W test, ytf68 test frames, IMM
photos), false detections on face-free images (the parts of 300-W and IMM test photos away from
the annotated face) and milliseconds per photo, one detector after another in one run.

    python tools/compare_detectors.py --data-root ../shared/datasets
    python tools/compare_detectors.py --detectors haar,dlib_hog,dlib_cnn --limit 100 --threads 2
    python tools/compare_detectors.py --split val --rotations 0,15,30,45 --detectors blazeface,mtcnn   # choosing
    python tools/compare_detectors.py --split val --shrink 1,4,8 --detectors blazeface,blazeface_full_upright   # small faces

--split val looks at the validation photos of 300-W only (and the face-free parts of 300-W and IMM
validation photos), for choosing; --rotations turns the 300-W photos by each angle, a set per angle.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default="blazeface,blazeface_upright,mtcnn,mtcnn_upright,haar,dlib_hog", help="comma-separated names of heatnet.detect.DETECTORS (mtcnn, blazeface, haar, ...)")
    parser.add_argument("--limit", type=int, default=0, help="photos per set (0: all)")
    parser.add_argument("--data-root", type=Path, help="default: $HEATNET_DATA")
    parser.add_argument("--threads", type=int, default=0, help="OpenCV and torch threads (0: all cores)")
    parser.add_argument("--split", default="test", choices=("test", "val"),
                        help="test: 300-W test, ytf68 test and all of IMM; val: 300-W validation photos, for choosing")
    parser.add_argument("--rotations", default="0", help="turn the 300-W photos by each angle, degrees counter-clockwise "
                        "(comma-separated): a set per angle")
    parser.add_argument("--shrink", default="1", help="shrink the 300-W photos by each factor onto a canvas of their "
                        "size (comma-separated): a set per factor, for small faces")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args = parser.parse_args()
    if args.limit < 0:
        fail(f"--limit must be 0 (all) or more, got {args.limit}")
    from heatnet.cli import parse_list

    rotations = parse_list(args.rotations, float, "--rotations", "angles in degrees") or (0.0,)
    shrinks = parse_list(args.shrink, float, "--shrink", "factors of 1 or more") or (1.0,)
    if min(shrinks) < 1:
        fail(f"--shrink {args.shrink}: factors of 1 or more")

    import cv2  # imported after parsing: --help answers at once

    from heatnet.datasets import load_split
    from heatnet.detect import make_detector
    from heatnet.detector_study import Shrunk, detector_row, detector_table
    from heatnet.face_score import face_free_images
    from heatnet.rotation import Turned
    from heatnet.runtime import set_threads

    set_threads(args.threads)
    cv2.setNumThreads(args.threads or -1)
    detectors = [make_detector(name.strip()) for name in args.detectors.split(",")]
    photos = load_split("300w", args.split, args.data_root)
    sets = {f"300w/{args.split}" + (f" turned {angle:g}" if rotations != (0.0,) else ""):
            Turned(photos, angle) if angle else photos for angle in rotations}
    sets |= {f"300w/{args.split} shrunk {factor:g}x": Shrunk(photos, factor) for factor in shrinks if factor != 1}
    if args.split == "test":
        sets |= {"ytf68/test": load_split("ytf68", "test", args.data_root), "imm/all": load_split("imm", "all", args.data_root)}
    imm = load_split("imm", "all" if args.split == "test" else "val", args.data_root)
    face_free = face_free_images(photos, limit=args.limit) + face_free_images(imm, limit=args.limit)
    rows = [detector_row(detector, sets, face_free, args.limit) for detector in detectors]
    print(detector_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
