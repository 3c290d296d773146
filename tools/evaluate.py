"""Evaluate a checkpoint on a dataset split: metrics table, per-region errors, cumulative error
curve PNG, predictions CSV (original pixels) and metrics JSON.

    python tools/evaluate.py runs/unet_kl/<time>/best.pt                       # its own val split
    python tools/evaluate.py runs/w300_unet_kl/<time>/best.pt --split test --flip-test
    python tools/evaluate.py CHECKPOINT --decoder "SoftArgmax(window_radius=3)" --out results/eval
    python tools/evaluate.py heatnet/data/heatnet_300w_68.pt --dataset 300w --split test --detector haar
    python tools/evaluate.py --dlib --dataset 300w --split test --detector dlib_hog   # dlib's 68-point predictor
    python tools/evaluate.py CHECKPOINT --split test --shifts 1,2,3,4    # NME and drift as the crop moves

The model is rebuilt from the experiment sources stored in the checkpoint (from any folder,
whatever happened to the experiment files since); --live-experiment uses the file on disk
instead and warns of each difference. Crops come from the ground-truth landmark box (or the
annotation's face box if the run used --box=annotation); with --detector, from a face detector's
box instead (the full pipeline of tools/predict.py): faces it misses are counted, and the faces
it finds are also scored from ground-truth crops, to show what the detector costs. --shifts moves
every crop by d input pixels (right, left, down, up) and reports the NME and how far the
predictions drift from the unmoved crop's (heatnet.robustness).
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="a heatnet checkpoint (or --dlib)")
    parser.add_argument("--dlib", action="store_true", help="evaluate dlib's 68-point predictor instead (needs "
                        "--dataset, --split and a --detector; the [dlib] extra)")
    parser.add_argument("--dataset", help="default: the one it was trained on")
    parser.add_argument("--split", help="default: its validation split")
    parser.add_argument("--data-root")
    parser.add_argument("--decoder", help="Argmax, QuarterOffset, Dark, SoftArgmax, with keywords, e.g. "
                        "'Dark(blur=True)' (default: the one stored in the checkpoint)")
    parser.add_argument("--live-experiment", action="store_true",
                        help="rebuild from the experiment file on disk, not the stored sources; warns of differences")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, help="average with the mirrored input's "
                        "prediction (default: as the checkpoint's run validated and tested)")
    parser.add_argument("--detector", help="crop from this face detector's boxes: haar, dlib_hog, dlib_cnn")
    parser.add_argument("--refine", type=int, default=1, help="with --detector: passes re-cropped around the "
                        "predicted points (default 1)")
    parser.add_argument("--shifts", help="comma-separated crop shifts in input pixels, e.g. 1,2,3,4: NME and "
                        "prediction drift for each (writes shift_robustness.json)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--out", type=Path, help="output folder (default: beside the checkpoint)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return 2
    if (args.checkpoint is None) == (not args.dlib):
        print("error: give a checkpoint, or --dlib (not both)", file=sys.stderr)
        return 2
    if args.dlib and not (args.dataset and args.split and args.detector and args.out):
        print("error: --dlib needs --dataset, --split, --detector and --out", file=sys.stderr)
        return 2

    from dataclasses import replace  # imported after parsing: --help answers at once

    from heatnet.checkpoint import CheckpointError, check_compatible
    from heatnet.codecs import Decoder
    from heatnet.config import ConfigError, parse_value
    from heatnet.data import ImageError
    from heatnet.datasets import DatasetError
    from heatnet.drawing import error_curve_figure
    from heatnet.evaluation import evaluate, load_trained
    from heatnet.files import check_writable
    from heatnet.formats import write_points_csv
    from heatnet.loading import make_dataset, make_loader
    from heatnet.predict import PRETRAINED
    from heatnet.runtime import choose_device, choose_precision, set_threads, tune_allocator

    tune_allocator()
    set_threads(args.threads)
    if args.dlib:
        return dlib_report(args)
    try:
        device = choose_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        decoder = parse_value("decoder", args.decoder, Decoder) if args.decoder else None
        method, s, state = load_trained(args.checkpoint, device, args.live_experiment)
        split = args.split or s.val_split or s.test_split
        # the run's own limits (quick runs) apply to its own dataset and splits only
        limit = {s.val_split: s.val_limit, s.test_split: s.test_limit}.get(split, 0) if args.dataset in (None, s.dataset) else 0
        s = replace(s, dataset=args.dataset or s.dataset, val_split=split,
                    data_root=args.data_root or s.data_root, batch_size=args.batch_size)
        # beside the checkpoint, but not inside the package for the shipped model
        default = args.checkpoint.parent / f"eval_{s.dataset}_{s.val_split}"
        if args.checkpoint.resolve().parent == PRETRAINED.parent:
            default = ROOT / "results" / f"eval_shipped_{s.dataset}_{s.val_split}"
        out = args.out or default
        check_writable(out)
        dataset = make_dataset(s, split, limit)
        check_compatible(state, dataset.scheme, args.checkpoint)
        if args.detector:
            return detector_report(args, method, s, dataset, device, out)
        if args.shifts:
            return shift_report(args, method, s, dataset, device, out)
        flip_test = s.flip_test if args.flip_test is None else args.flip_test
        result = evaluate(method, make_loader(dataset, s), device, decoder, flip_test, choose_precision(device, s.amp),
                          progress="" if args.no_progress else f"{s.dataset}/{split}")
    except (CheckpointError, ConfigError, DatasetError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    metrics = result.summary()
    out.mkdir(parents=True, exist_ok=True)
    title = (f"{args.checkpoint} on {s.dataset}/{s.val_split} ({len(result.indices)} images"
             + (f", {len(result.skipped)} unreadable left out" if result.skipped else "")
             + f", {dataset.source.normaliser.value} NME, crops from the {s.box.value} box)")
    print(f"{title}\n\n| metric | value |\n|---|---|")
    for key, value in metrics.items():
        print(f"| {key} | {value:.4g} |")
    per_image = result.errors.per_image()
    error_curve_figure({Path(args.checkpoint).parent.name: per_image}, title=f"{s.dataset}/{s.val_split}").savefig(
        out / "error_curve.png", dpi=120)
    write_points_csv(out / "predictions.csv", [dataset.source.name_of(int(i)) for i in result.indices], result.predictions)
    decoder_used = decoder or getattr(method.codec, "decoder", None)
    (out / "metrics.json").write_text(json.dumps({
        "checkpoint": str(args.checkpoint), "dataset": s.dataset, "split": s.val_split,
        "decoder": repr(decoder_used) if decoder_used else None, "normaliser": dataset.source.normaliser.value,
        "flip_test": flip_test, "skipped": result.skipped, "metrics": metrics,
        "per_point_nme": result.errors.per_point().tolist(), "per_image_nme": per_image.tolist()}, indent=1))
    print(f"\nwrote {out}/metrics.json, predictions.csv, error_curve.png")
    return 0


def shift_report(args, method, s, dataset, device, out: Path) -> int:
    """NME and prediction drift as every crop moves by each of --shifts pixels."""
    from heatnet.robustness import shift_robustness
    from heatnet.runtime import choose_precision

    try:
        shifts = tuple(int(d) for d in args.shifts.split(","))
    except ValueError:
        print(f"error: --shifts expects comma-separated whole pixels, got {args.shifts!r}", file=sys.stderr)
        return 2
    rows = shift_robustness(method, dataset, s, device, shifts, choose_precision(device, s.amp))
    print(f"{args.checkpoint} on {s.dataset}/{s.val_split}, crops moved by d input pixels "
          f"(of {s.input_size}; mean of right, left, down, up)\n\n"
          "| shift px | NME % | change | drift % |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['shift_px']} | {row['nme_%']:.3f} | {row['nme_change_%']:+.3f} | {row['drift_%']:.3f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "shift_robustness.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "dataset": s.dataset,
                                                           "split": s.val_split, "input_size": s.input_size,
                                                           "rows": rows}, indent=1))
    print(f"\nwrote {out}/shift_robustness.json")
    return 0


def detector_report(args, method, s, dataset, device, out: Path) -> int:
    """The full pipeline's figures for a checkpoint."""
    from heatnet.detect import make_detector
    from heatnet.predict import FacePredictor

    predictor = FacePredictor(method, s, dataset.scheme, device, make_detector(args.detector), args.batch_size,
                              args.refine)
    return write_detector_report(args, predictor, dataset.source, str(args.checkpoint), s.dataset, s.val_split, out)


def dlib_report(args) -> int:
    """The same figures for dlib's 68-point predictor."""
    from heatnet.config import ConfigError
    from heatnet.datasets import DatasetError, load_split
    from heatnet.detect import make_detector
    from heatnet.predict import DlibPredictor

    try:
        source = load_split(args.dataset, args.split, Path(args.data_root) if args.data_root else None)
        if source.scheme.num_points != 68:
            raise ConfigError(f"dlib's predictor gives 68 points; {args.dataset} has {source.scheme.num_points}")
        predictor = DlibPredictor(make_detector(args.detector))
    except (ConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return write_detector_report(args, predictor, source, "dlib shape_predictor_68_face_landmarks", args.dataset,
                                 args.split, args.out)


def write_detector_report(args, predictor, source, model: str, dataset: str, split: str, out: Path) -> int:
    """Misses, NME from detector crops and from ground-truth crops of the same faces: printed
    and written to out/metrics.json."""
    from heatnet.predict import evaluate_with_detector

    result = evaluate_with_detector(predictor, source, progress="" if args.no_progress else split)
    total = len(source)
    metrics = {"faces": total, "missed": len(result.missed), "missed_%": 100 * len(result.missed) / total,
               "detector_per_image_ms": 1000 * result.detect_s / total}
    if len(result.missed) < total:
        metrics.update({f"detector_crops_{k}": v for k, v in result.detected.summary().items()})
        metrics.update({f"ground_truth_crops_{k}": v for k, v in result.ground_truth_crops.summary().items()})
    out.mkdir(parents=True, exist_ok=True)
    print(f"{model} on {dataset}/{split} with {args.detector} boxes, {predictor.refine} refine pass(es) "
          f"({source.normaliser.value} NME)\n\n"
          f"| metric | value |\n|---|---|")
    for key in ("faces", "missed", "missed_%", "detector_per_image_ms", "detector_crops_nme_%", "detector_crops_nme_median_%",
                "detector_crops_fr@10_%", "ground_truth_crops_nme_%", "ground_truth_crops_nme_median_%"):
        if key in metrics:
            print(f"| {key} | {metrics[key]:.4g} |")
    (out / "metrics.json").write_text(json.dumps({"model": model, "dataset": dataset, "split": split,
                                                  "detector": args.detector, "refine": predictor.refine,
                                                  "metrics": metrics,
                                                  "missed": result.missed}, indent=1))
    print(f"\nwrote {out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
