"""Sweep settings over a grid: one run after another under one budget rule, then a table and a plot.

    python tools/sweep.py experiments/unet_kl.py --grid sigma=1,1.5,2 --grid stride=2,4 --epochs 3
    python tools/sweep.py experiments/w300_unet_kl.py --grid lr=5e-4,1e-3,2e-3 --seeds 2 --minutes 10 \
        --data_root=../shared/datasets
    python tools/sweep.py experiments/unet_kl.py --grid decoder="Dark(),SoftArgmax(window_radius=3)" --steps 500

Other `--key=value` settings go to every run. Budgets as in tools/benchmark.py: `--epochs N`,
`--steps N`, or `--minutes M` (converted into steps once per grid point, on its first seed, and
replayed on the others). The metric is the validation NME of the checkpoint validation chose;
the runs read no test data unless --report-test. Writes results/sweep_<experiment>_<time>/ (or
--out): sweep.md, sweep.csv, sweep.json, sweep.png, learning_curves.png and each run's folder. Running the same
command with the same --out again skips finished runs and resumes interrupted ones.
"""
import argparse
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a setting and its values (repeat for more keys: every combination runs)")
    parser.add_argument("--seeds", type=int, default=1)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training budget per run, converted once per grid point into steps")
    budget.add_argument("--epochs", type=int, help="epochs per run")
    budget.add_argument("--steps", type=int, help="optimizer steps per run")
    parser.add_argument("--report-test", action="store_true",
                        help="also test each run once on its test split (do not choose settings by it)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-progress", action="store_true")
    args, overrides = parser.parse_known_args()
    if args.seeds < 1:
        print("error: --seeds must be at least 1", file=sys.stderr)
        return 2
    if any(value is not None and value <= 0 for value in (args.minutes, args.epochs, args.steps)):
        print("error: --minutes, --epochs and --steps must be positive", file=sys.stderr)
        return 2

    from heatnet.checkpoint import CheckpointError  # imported after parsing: --help answers at once
    from heatnet.config import ConfigError
    from heatnet.data import ImageError
    from heatnet.datasets import DatasetError
    from heatnet.files import SaveError, check_writable
    from heatnet.models import ModelConfigError
    from heatnet.sweep import parse_grid, run_sweep, write_sweep_report

    if args.epochs:
        overrides.append(f"--epochs={args.epochs}")
    elif args.steps:
        overrides += ["--epochs=1000000", f"--max_steps={args.steps}"]
    elif args.minutes:
        overrides += ["--epochs=1000000", f"--time_budget_min={args.minutes}"]
    if not args.report_test:
        overrides.append("--test_split=")
    overrides.append("--keep_last=False")  # a finished run keeps best.pt only
    out = args.out or Path("results") / f"sweep_{args.experiment.stem}_{time.strftime('%Y%m%d-%H%M%S')}"
    budget_text = (f"{args.epochs} epochs" if args.epochs else f"{args.steps} steps" if args.steps
                   else f"{args.minutes:g} min converted to steps per grid point" if args.minutes
                   else "the experiment's epochs")
    try:
        grid = parse_grid(args.grid)
        check_writable(out)
        rows = run_sweep(args.experiment, grid, args.seeds, overrides, out, progress=not args.no_progress)
    except (ConfigError, DatasetError, ModelConfigError, CheckpointError, SaveError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    header = (f"Sweep of {args.experiment} over {', '.join(key for key, _ in grid)}: {args.seeds} seed(s), "
              f"{budget_text}; other settings {' '.join(overrides) or 'as in the experiment'}. Validation NME % "
              f"of the checkpoint validation chose, mean ± std over seeds.")
    print("\n" + write_sweep_report(rows, grid, out, header))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
