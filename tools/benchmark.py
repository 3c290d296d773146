"""Regression vs heatmaps, one honest table: the same data, splits, input size, augmentation and
budget for every method, over N seeds.

    python tools/benchmark.py                          # synthetic faces, 2 min per method: ~15 minutes on 2 cores
    python tools/benchmark.py --quick                  # smoke run, ~3 minutes (make bench-quick)
    python tools/benchmark.py --dataset 300w --data-root ../shared/datasets --minutes 20 --seeds 3
    python tools/benchmark.py --methods unet_kl,experiments/my_idea.py --epochs 10

Writes results/benchmark_<dataset>_<time>/: results.md, results.json, results.csv,
error_curves.png, regions.png, and each run's folder (checkpoints, TensorBoard).
"""
import argparse
import csv
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from heatnet.benchmark import codec_floor, markdown_table, mean_and_spread, model_cost
from heatnet.codecs import DECODERS, GaussianHeatmap
from heatnet.drawing import error_curve_figure
from heatnet.evaluation import evaluate, load_trained
from heatnet.runtime import choose_device
from heatnet.training import make_dataset, make_loader, train

ROOT = Path(__file__).resolve().parents[1]
METHODS = {  # name -> experiment file; any other experiment path works too
    "regression_resnet18": ROOT / "experiments/regression_resnet18.py",
    "unet_kl": ROOT / "experiments/unet_kl.py",
    "unet_mse": ROOT / "experiments/unet_mse.py",
    "fpn_kl": ROOT / "experiments/fpn_kl.py",
    "unet_softargmax": ROOT / "experiments/unet_softargmax.py",
    "fpn_mse": ROOT / "experiments/fpn_mse.py",
    "regression_cnn": ROOT / "experiments/regression_cnn.py",
}
DEFAULT = "regression_resnet18,unet_kl,unet_mse,fpn_kl,unet_softargmax"
EVAL_SPLIT = {"synthetic": "test", "300w": "test", "ytf68": "test", "imm": "val", "imm_nose": "val", "kaggle": "val",
              "dlib": "test", "wflw": "test"}
COLUMNS = [("nme", "NME %", ".2f"), ("nme_median", "median %", ".2f"), ("fr@0.1", "FR@10 %", ".1f"),
           ("auc@0.1", "AUC@10 %", ".1f"), ("mae_px", "MAE px", ".2f"), ("rmse_px", "RMSE px", ".2f"),
           ("params_m", "params M", ".1f"), ("gflops", "GFLOPs", ".2f"), ("train_time_s", "train s", ".0f"),
           ("latency_b1_ms", "ms b1", ".1f"), ("latency_b32_ms", "ms b32", ".0f")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=DEFAULT, help=f"comma-separated names ({', '.join(METHODS)}) or experiment files")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-root")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=None, help="epochs per method (default: the time budget decides)")
    p.add_argument("--minutes", type=float, default=2.0, help="wall-clock training budget per method and seed")
    p.add_argument("--input-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="a ~3 minute smoke run")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    overrides = [f"--dataset={args.dataset}", f"--input_size={args.input_size}", f"--time_budget_min={args.minutes}",
                 f"--val_split={EVAL_SPLIT[args.dataset]}", "--train_limit=0", "--log_images=4"]
    overrides += [f"--epochs={args.epochs}"] if args.epochs else ["--epochs=1000"]
    if args.data_root:
        overrides.append(f"--data_root={args.data_root}")
    if args.quick:
        overrides = [o for o in overrides if not o.startswith(("--time_budget_min", "--epochs", "--input_size", "--train_limit"))]
        overrides += ["--input_size=64", "--epochs=1", "--train_limit=96", "--val_limit=48", "--workers=0", "--time_budget_min=0.3"]
    out = args.out or ROOT / "results" / f"benchmark_{args.dataset}_{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [n for n in names if n not in METHODS and not Path(n).is_file()]
    if unknown:
        print(f"error: unknown method(s) {unknown}; choose from {', '.join(METHODS)} or give experiment files", file=sys.stderr)
        return 2

    results, curves, regions, decoders, raw = {}, {}, {}, {}, {}
    for name in names:
        experiment = METHODS.get(name, Path(name))
        name = Path(name).stem
        rows = []
        for seed in range(args.seeds):
            run = train(experiment, overrides + [f"--seed={seed}"], run_dir=out / "runs" / f"{name}_seed{seed}",
                        progress=sys.stderr.isatty())
            method, s, _ = load_trained(Path(run["run_dir"]) / "last.pt", device)
            loader = make_loader(make_dataset(s, s.val_split, s.val_limit), s)
            heatmaps = isinstance(method.codec, GaussianHeatmap)
            evaluation = evaluate(method, loader, device, extra_decoders=DECODERS if heatmaps and seed == 0 else None)
            row = {**evaluation.errors.summary(), "train_time_s": run["train_time_s"],
                   **model_cost(method, s.input_size, s.channels, device)}
            if heatmaps and seed == 0:
                decoders[name] = {**{d: e.summary()["nme"] for d, e in evaluation.by_decoder.items()},
                                  "codec floor": codec_floor(method.codec, loader)}
            if seed == 0:
                curves[name] = evaluation.errors.per_image()
                regions[name] = {k[4:]: v for k, v in row.items() if k.startswith("nme_") and k != "nme_median"}
            rows.append(row)
            print(f"{name} seed {seed}: NME {row['nme']:.2f}% ({run['train_time_s']:.0f} s training)")
        raw[name] = rows
        results[name] = mean_and_spread(rows)

    device_text = f"{device.type}" + (f" ({__import__('torch').cuda.get_device_name()})" if device.type == "cuda" else "")
    header = (f"Dataset {args.dataset} (eval split {EVAL_SPLIT[args.dataset]}), {args.seeds} seed(s), "
              f"{'quick profile' if args.quick else f'{args.minutes} min per method' + (f', {args.epochs} epochs' if args.epochs else '')}, "
              f"device {device_text}. Mean ± std over seeds.")
    table = markdown_table(results, COLUMNS)
    decoder_names = list(next(iter(decoders.values())).keys()) if decoders else []
    decoder_table = "\n".join(["| heatmap method | " + " | ".join(decoder_names) + " |", "|---|" + "---|" * len(decoder_names)]
                              + [f"| {m} | " + " | ".join(f"{v:.2f}" for v in d.values()) + " |" for m, d in decoders.items()])
    report = f"{header}\n\n{table}\n\nNME % by decoder on the same weights (codec floor: ground truth encoded and decoded):\n\n{decoder_table}\n"
    print("\n" + report)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps({"header": header, "per_seed": raw, "decoders": decoders,
                                                  "overrides": overrides}, indent=1))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method"] + [f"{k}_{stat}" for k, _, _ in COLUMNS for stat in ("mean", "std")])
        for name, stats in results.items():
            writer.writerow([name] + [v for k, _, _ in COLUMNS for v in stats.get(k, (np.nan, np.nan))])
    error_curve_figure(curves, title=f"{args.dataset} / {EVAL_SPLIT[args.dataset]}").savefig(out / "error_curves.png", dpi=120)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    region_names = list(next(iter(regions.values())))
    width = 0.8 / len(regions)
    for i, (name, values) in enumerate(regions.items()):
        ax.bar(np.arange(len(region_names)) + i * width, [values[r] for r in region_names], width, label=name)
    ax.set_xticks(np.arange(len(region_names)) + 0.4 - width / 2, region_names)
    ax.set_ylabel("NME (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "regions.png", dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
