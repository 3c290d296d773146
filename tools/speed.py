"""Speed benchmarks that print numbers (no assertions): data loading, the heatmap codec, the
shipped predictor, and a training step's profile.

    python tools/speed.py data  [--data-root ../shared/datasets]   # 300w loading at 128 px, synthetic rate
    python tools/speed.py codec                                    # encode / decode vs mmpose-style reference
    python tools/speed.py predict [--models accurate fast]         # per-face latency of models, dlib's predictor, detectors,
        # then whole photos (detector + points) with each detector of --detectors
    python tools/speed.py train --experiment experiments/w300_unet_js.py [--device cuda] [--key=value ...]
        # the model-step ceiling, the input alone and the training loop, in samples/s, and the device's busy share

The probes live in heatnet/profiling.py.
"""
import argparse
import sys
from pathlib import Path

from heatnet.cli import fail, parse_list, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["data", "codec", "predict", "train"], help="what to time")
    parser.add_argument("--experiment", type=Path, default=Path(__file__).resolve().parents[1] / "experiments/unet_kl.py",
                        help="train: the experiment whose step is profiled (other --key=value settings apply to it)")
    parser.add_argument("--steps", type=int, default=20, help="train: steps timed after 3 warm-up steps")
    parser.add_argument("--device", help="train: cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=2, help="predict: torch and onnxruntime threads")
    parser.add_argument("--models", nargs="+", default=["accurate", "fast"],
                        help="predict: checkpoints or shipped models (accurate, fast) timed side by side")
    parser.add_argument("--data-root", type=Path, help="default: $HEATNET_DATA")
    parser.add_argument("--workers", type=int, help="data loader processes (default: data 2, train the experiment's)")
    parser.add_argument("--photos", type=int, default=20, help="predict: lfpw test photos the whole pipeline is timed "
                        "on (0: none)")
    parser.add_argument("--detectors", default="blazeface,blazeface_upright,mtcnn_upright",
                        help="predict: the detectors the whole photo pipeline is timed with, comma-separated: names of "
                        "heatnet.detect.DETECTORS or checkpoints of tools/train_detector.py (also timed alone)")
    parser.add_argument("--refine", help="predict: the refine passes the whole photo pipeline is timed with, "
                        "comma-separated (e.g. 0,1; default: each model's own)")
    parser.add_argument("--mediapipe-python", help="predict: a Python with mediapipe 0.10.21 (its own venv): its "
                        "face mesh is timed on the same photos, a row of the same table (tools/mediapipe_speed.py)")
    parser.add_argument("--samples", type=int, default=1024, help="data, codec: samples timed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (this tool shows none)")
    args, overrides = parser.parse_known_args()
    if overrides and args.what != "train":
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    if args.device and args.what != "train":
        parser.error("--device is for `train` (predict times the CPU)")
    if args.what == "train":
        overrides += [f"--{name}={value}" for name, value in (("workers", args.workers), ("device", args.device),
                                                              ("data_root", args.data_root)) if value is not None]
    args.workers = 2 if args.workers is None else args.workers
    if args.workers < 0 or args.samples < 32:
        fail("--workers must be 0 or more and --samples at least 32 (one batch)")

    from heatnet import profiling  # imported after parsing: --help answers at once
    from heatnet.experiment import experiment_settings

    if args.what == "train":
        settings = experiment_settings(args.experiment, overrides)
        profiling.bench_train(args.experiment, settings, args.steps)
    elif args.what == "data":
        profiling.bench_data(args.data_root, args.workers, args.samples)
    elif args.what == "predict":
        from heatnet.predict import model_path

        detectors = [name.strip() for name in args.detectors.split(",") if name.strip()]
        profiling.bench_predict(args.data_root, args.threads, [model_path(m) for m in args.models],
                                checkpoints=tuple(name for name in detectors if name.endswith(".pt")))
        if args.photos:
            profiling.bench_photos(args.data_root, args.threads, args.models, detectors, args.photos,
                                   mediapipe_python=args.mediapipe_python,
                                   refines=parse_list(args.refine, int, "--refine", "numbers of passes") if args.refine else ())
    else:
        profiling.bench_codec(32, 68, 64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
