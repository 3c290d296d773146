"""Find faces in photos or a video and predict their landmarks: annotated images (or an annotated
video), faces.json and points.csv.

    python tools/predict.py photo.jpg                          # the shipped 300-W model, MTCNN detector
    python tools/predict.py photos/ --out results/photos       # every image of a folder
    python tools/predict.py photo.jpg --model runs/w300_unet_js/<time>/best.pt --detector haar
    python tools/predict.py clip.mp4 --min-cutoff 1 --beta 0.5 # tracked and smoothed (--no-smooth: raw)
    python tools/predict.py group.jpg --min-score 0 --keep-dropped   # keep every detection / list the dropped

Faces are found by a detector (MTCNN by default, measured best in docs/detectors.md; OpenCV's
Haar cascade; dlib_hog and dlib_cnn with `pip install -e ".[dlib]"`), cropped as the
model was trained, predicted in batches, and the points mapped back to the photo's pixels (EXIF orientation applied; grayscale, RGBA, 16-bit and
huge photos work). A detection whose face score (the mean of its points' heatmap peaks) is below
--min-score is dropped as a non-face and counted (the shipped model's threshold was chosen on
validation: tools/choose_min_score.py). A photo without a face is reported, not an error; an input of which no
image or frame could be read exits with code 2 and writes nothing. In a video each face is
tracked (the next crop comes from the previous frame's points; the detector runs again when a
face is lost) and its points smoothed with a One-Euro filter (heatnet/video.py). points.csv has
one row per face: name (image#face, or video@frame#face), x0, y0, ..., then the per-point scores.
"""
import argparse
import sys
import time
from pathlib import Path

from heatnet.cli import fail, tool

ROOT = Path(__file__).resolve().parents[1]
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def inputs_of(path: Path) -> list[Path]:
    """The photos a path names: itself, or every file of a folder but videos and hidden files
    (sorted, not recursive): each is read as it would be alone, and one that does not read is
    named with its reason."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                      and p.suffix.lower() not in VIDEO_SUFFIXES)
    return [path]


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="an image, a folder of images, or a video")
    parser.add_argument("--model", help="a heatnet checkpoint, a run folder (its best.pt), or a shipped model: "
                        "accurate (the default) or fast")
    parser.add_argument("--detector", default="blazeface", help="blazeface (default: any roll), blazeface_upright, mtcnn, "
                        "mtcnn_when_none, mtcnn_upright, dlib_hog, haar or dlib_cnn (docs/detectors.md)")
    parser.add_argument("--out", type=Path, help="output folder (default results/predict_<time>)")
    parser.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=16, help="faces per forward pass")
    parser.add_argument("--refine", type=int, help="passes re-cropped around the predicted points (0: the detector's "
                        "crop only, half the time; default: the shipped model's own, accurate 1, fast 0; else 1)")
    parser.add_argument("--min-score", type=float, help="drop detections whose face score is lower (default: the "
                        "shipped model's chosen threshold; 0, keeping all, for other checkpoints)")
    parser.add_argument("--keep-dropped", action="store_true", help="list the dropped detections, with their scores, "
                        "in faces.json")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1: at most "
                        "1.6x slower than 2 on idle cores, up to 3x faster when they are busy; docs/shipped_model.md)")
    parser.add_argument("--runtime", choices=["auto", "pytorch", "onnxruntime"], default="auto",
                        help="what runs the network (auto: onnxruntime on a CPU when installed, the [onnx] extra; "
                        "its graph is exported on first use and cached)")
    parser.add_argument("--min-cutoff", type=float, help="video: One-Euro cutoff of a still face, Hz "
                        "(lower: smoother; default 1)")
    parser.add_argument("--beta", type=float, help="video: how fast the cutoff rises with motion "
                        "(higher: less lag; default 0.5)")
    parser.add_argument("--no-smooth", action="store_true", help="video: raw per-frame points")
    parser.add_argument("--overwrite", action="store_true", help="write into an --out folder that already holds results")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    if not args.input.exists():
        fail(f"{args.input}: no such image or folder")
    photos = inputs_of(args.input)
    if not photos:
        fail(f"{args.input}: no files in this folder")
    # a flag the input's kind cannot honour is refused, never ignored
    video = args.input.suffix.lower() in VIDEO_SUFFIXES
    video_only = [flag for flag, given in (("--min-cutoff", args.min_cutoff is not None), ("--beta", args.beta is not None),
                                          ("--no-smooth", args.no_smooth)) if given]
    if video_only and not video:
        fail(f"{', '.join(video_only)}: for a video only ({args.input} is read as photos)")
    if args.keep_dropped and video:
        fail("--keep-dropped: for photos only (a video's faces are tracked)")
    args.min_cutoff = 1.0 if args.min_cutoff is None else args.min_cutoff
    args.beta = 0.5 if args.beta is None else args.beta
    if args.out and (args.out / "faces.json").exists() and not args.overwrite:
        fail(f"--out {args.out}: already holds results (faces.json); give another folder or --overwrite")

    from heatnet.annotate import predict_photos, predict_video  # imported after parsing: --help answers at once
    from heatnet.detect import make_detector
    from heatnet.files import check_writable
    from heatnet.predict import FacePredictor, Runtime, model_path
    from heatnet.runtime import choose_device, set_threads

    set_threads(args.threads)
    out = args.out or ROOT / "results" / f"predict_{time.strftime('%Y%m%d-%H%M%S')}"
    device = choose_device(args.device)
    check_writable(out)
    predictor = FacePredictor.from_checkpoint(model_path(args.model), device, make_detector(args.detector),
                                              args.min_score, None if args.refine is None else max(0, args.refine))
    predictor.batch_size = max(1, args.batch_size)
    try:
        runtime = predictor.use_runtime(Runtime(args.runtime), args.threads)
    except ImportError:
        fail('--runtime=onnxruntime needs onnx and onnxruntime: pip install -e ".[onnx]"')
    if video:
        summary = predict_video(predictor, args.input, out, args.min_cutoff, args.beta, not args.no_smooth,
                                progress=not args.no_progress)
        print(f"{summary.inputs} frames, {summary.faces} face(s) in all, detector run on {summary.detections}; "
              f"{1000 * summary.predict_s / summary.inputs:.1f} ms per frame ({runtime.value})")
    else:
        summary = predict_photos(predictor, photos, out, str(model_path(args.model)),
                                 progress=not args.no_progress and len(photos) > 1, keep_dropped=args.keep_dropped)
        print(f"{summary.faces} face(s) in {summary.inputs} image(s), {summary.dropped} detection(s) dropped below "
              f"--min-score={predictor.min_score:g}; detector "
              f"{1000 * summary.detect_s / summary.inputs:.1f} ms per image, landmarks "
              f"{1000 * summary.predict_s / max(summary.faces + summary.dropped, 1):.1f} ms per face (batches of {predictor.batch_size}, "
              f"{device.type}, {runtime.value})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
