"""Evaluate a checkpoint on a dataset split: metrics table, per-region errors, cumulative error
curve PNG, predictions CSV (original pixels) and metrics JSON.

    python tools/evaluate.py runs/unet_kl/<time>/best.pt                       # its own val split
    python tools/evaluate.py runs/w300_unet_js/<time>/best.pt --split test --flip-test
    python tools/evaluate.py CHECKPOINT --decoder "SoftArgmax(window_radius=3)" --out results/eval
    python tools/evaluate.py heatnet/assets/heatnet_300w_68.pt --dataset 300w --split test --detector haar
    python tools/evaluate.py --dlib --dataset 300w --split test --detector dlib_hog   # dlib's 68-point predictor
    python tools/evaluate.py CHECKPOINT --split test --shifts 1,2,3,4    # NME and drift as the crop moves
    python tools/evaluate.py CHECKPOINT --images my_faces/     # a labelled folder of one's own
    python tools/evaluate.py fast --dataset 300w --split test --rotations 0,90,180   # photos turned in the plane

The model is rebuilt from the experiment sources stored in the checkpoint (from any folder,
whatever happened to the experiment files since); --live-experiment uses the file on disk
instead and warns of each difference. Crops come from the ground-truth landmark box (or the
annotation's face box if the run used --box=annotation); with --detector, from a face detector's
box instead (the full pipeline of tools/predict.py): faces it misses are counted, and the faces
it finds are also scored from ground-truth crops, to show what the detector costs. --shifts moves
every crop by d input pixels (right, left, down, up) and reports the NME and how far the
predictions drift from the unmoved crop's (heatnet.robustness). --rotations turns every photo by
each angle (counter-clockwise, degrees) and reports faces found, kept and NME through the detector
(blazeface unless --detector names another) and from the ground-truth crop (heatnet.rotation). --images evaluates on a folder of
one's own, labelled with .pts files beside the images, one dlib XML file or one CSV in the ytf68
layout (68 points); every report is named after the folder.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, parse_list, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="a heatnet checkpoint, a shipped model (accurate or "
                        "fast), or --dlib")
    parser.add_argument("--dlib", action="store_true", help="evaluate dlib's 68-point predictor instead (needs "
                        "--dataset, --split and a --detector; the [dlib] extra)")
    parser.add_argument("--dataset", help="default: the one it was trained on")
    parser.add_argument("--split", help="default: its validation split")
    parser.add_argument("--data-root", help="default: the checkpoint's, else $HEATNET_DATA")
    parser.add_argument("--images", type=Path, help="a labelled folder as the test set, instead of --dataset/--split")
    parser.add_argument("--decoder", help="Argmax, QuarterOffset, Dark, SoftArgmax, with keywords, e.g. "
                        "'Dark(blur=True)' (default: the one stored in the checkpoint)")
    parser.add_argument("--live-experiment", action="store_true",
                        help="rebuild from the experiment file on disk, not the stored sources; warns of differences")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, help="average with the mirrored input's "
                        "prediction (default: as the checkpoint's run validated and tested)")
    parser.add_argument("--detector", help="crop from this face detector's boxes: a name in heatnet.detect.DETECTORS (blazeface, mtcnn, ...)")
    parser.add_argument("--refine", type=int, help="with --detector: passes re-cropped around the predicted points "
                        "(default: the shipped model's own, accurate 1, fast 0; else 1)")
    parser.add_argument("--shifts", help="comma-separated crop shifts in input pixels, e.g. 1,2,3,4: NME and "
                        "prediction drift for each (writes shift_robustness.json)")
    parser.add_argument("--rotations", help="comma-separated angles in degrees, e.g. 0,90,180: the photos turned "
                        "by each, through the detector (writes roll_robustness.json)")
    parser.add_argument("--limit", type=int, default=0, help="with --rotations: the first N faces only (0: all)")
    parser.add_argument("--batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--out", type=Path, help="output folder (default: beside the checkpoint)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    if args.batch_size < 1:
        fail(f"--batch-size must be at least 1, got {args.batch_size}")
    if (args.checkpoint is None) == (not args.dlib):
        fail("give a checkpoint, or --dlib (not both)")
    if args.images and (args.dataset or args.split):
        fail("--images is the test set: leave out --dataset and --split")
    if args.dlib and not ((args.images or args.dataset and args.split) and args.detector and args.out):
        fail("--dlib needs --dataset and --split (or --images), --detector and --out")
    shifts = parse_list(args.shifts, int, "--shifts", "whole pixels")
    rotations = parse_list(args.rotations, float, "--rotations", "angles in degrees")
    if rotations and shifts:
        fail("--rotations and --shifts are separate studies: give one")
    if rotations and not args.detector:
        args.detector = "blazeface"
    # a flag the chosen mode cannot honour is refused, never ignored
    pipeline = "--detector" if args.detector else "--shifts" if shifts else ""
    for flag, given in (("--flip-test", args.flip_test is not None), ("--decoder", args.decoder is not None)):
        if given and (pipeline or args.dlib):
            fail(f"{flag} applies to the evaluation from ground-truth crops; {pipeline or '--dlib'} predicts without it")
    if args.refine is not None and not args.detector:
        fail("--refine applies with --detector only")
    if args.limit and not rotations:
        fail("--limit applies with --rotations only")

    from dataclasses import replace  # imported after parsing: --help answers at once

    from heatnet import reports
    from heatnet.checkpoint import check_compatible
    from heatnet.codecs import Decoder
    from heatnet.config import parse_value
    from heatnet.datasets import load_folder, load_split
    from heatnet.detect import make_detector
    from heatnet.evaluation import evaluate, load_trained
    from heatnet.files import check_writable
    from heatnet.loading import folder_dataset, make_dataset, make_loader
    from heatnet.predict import DlibPredictor, FacePredictor, model_path, shipped_min_score, shipped_refine
    from heatnet.robustness import shift_robustness
    from heatnet.runtime import choose_device, choose_precision, set_threads, tune_allocator

    tune_allocator()
    set_threads(args.threads)
    if args.dlib:
        source = load_folder(args.images) if args.images else \
            load_split(args.dataset, args.split, Path(args.data_root) if args.data_root else None)
        if source.scheme.num_points != 68:
            fail(f"dlib's predictor gives 68 points; {args.dataset} has {source.scheme.num_points}")
        name = args.images.name if args.images else f"{args.dataset}/{args.split}"
        print(reports.pipeline_report(DlibPredictor(make_detector(args.detector)), source, args.out,
                                      "dlib shape_predictor_68_face_landmarks", name, args.detector, rotations,
                                      args.limit, not args.no_progress))
        return 0
    device = choose_device(args.device)
    args.checkpoint = model_path(args.checkpoint)
    decoder = parse_value("decoder", args.decoder, Decoder) if args.decoder else None
    method, s, state = load_trained(args.checkpoint, device, args.live_experiment)
    split = args.split or s.val_split or s.test_split
    # the run's own limits (quick runs) apply to its own dataset and splits only
    limit = {s.val_split: s.val_limit, s.test_split: s.test_limit}.get(split, 0) if args.dataset in (None, s.dataset) else 0
    s = replace(s, dataset=args.dataset or s.dataset, val_split=split, data_root=args.data_root or s.data_root,
                batch_size=args.batch_size)
    name = args.images.resolve().name if args.images else f"{s.dataset}/{split}"
    out = args.out or reports.evaluation_folder(args.checkpoint, name)
    check_writable(out)
    dataset = folder_dataset(s, args.images) if args.images else make_dataset(s, split, limit)
    check_compatible(state, dataset.scheme, args.checkpoint)
    precision = choose_precision(device, s.amp)
    if args.detector:
        args.refine = shipped_refine(args.checkpoint) if args.refine is None else args.refine
        predictor = FacePredictor(method, s, dataset.scheme, device, make_detector(args.detector), args.batch_size,
                                  args.refine, shipped_min_score(args.checkpoint))
        print(reports.pipeline_report(predictor, dataset.source, out, str(args.checkpoint), name, args.detector,
                                      rotations, args.limit, not args.no_progress))
    elif shifts:
        rows = shift_robustness(method, dataset, s, device, shifts, precision)
        print(reports.shift_report(out, args.checkpoint, s, rows, name))
    else:
        flip_test = s.flip_test if args.flip_test is None else args.flip_test
        result = evaluate(method, make_loader(dataset, s), device, decoder, flip_test, precision,
                          progress="" if args.no_progress else name)
        print(reports.evaluation_report(out, args.checkpoint, s, dataset, result,
                                        decoder or getattr(method.codec, "decoder", None), flip_test, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
