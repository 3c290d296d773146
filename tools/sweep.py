"""Sweep settings over a grid: one run after another under one budget rule, then a table and a plot.

    python tools/sweep.py experiments/unet_kl.py --grid sigma=1,1.5,2 --grid stride=2,4 --epochs 3
    python tools/sweep.py experiments/w300_unet_js.py --grid lr=5e-4,1e-3,2e-3 --seeds 2 --minutes 10 \
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
import dataclasses
import sys
import time
from pathlib import Path

from heatnet.cli import fail, tool


@tool
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a setting and its values (repeat for more keys: every combination runs)")
    parser.add_argument("--seeds", type=int, default=1, help="runs per grid point, seeds 0..N-1")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training budget per run, converted once per grid point into steps")
    budget.add_argument("--epochs", type=int, help="epochs per run")
    budget.add_argument("--steps", type=int, help="optimizer steps per run")
    parser.add_argument("--report-test", action="store_true",
                        help="also test each run once on its test split (do not choose settings by it)")
    parser.add_argument("--out", type=Path, help="output folder (default: results/sweep_<experiment>_<time>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args, overrides = parser.parse_known_args()
    if args.seeds < 1:
        fail("--seeds must be at least 1")
    if any(value is not None and value <= 0 for value in (args.minutes, args.epochs, args.steps)):
        fail("--minutes, --epochs and --steps must be positive")

    from heatnet.experiment import experiment_settings  # imported after parsing: --help answers at once
    from heatnet.files import check_writable
    from heatnet.sweep import parse_grid, run_sweep, write_sweep_report
    from heatnet.training import Epochs, Minutes, Steps, budget_of, describe, with_budget

    settings = experiment_settings(args.experiment, overrides)
    budget = Epochs(args.epochs) if args.epochs else Steps(args.steps) if args.steps else \
        Minutes(args.minutes) if args.minutes else budget_of(settings)
    # a finished run keeps best.pt only; the test split is read only when asked
    settings = dataclasses.replace(with_budget(settings, budget), keep_last=False,
                                   test_split=settings.test_split if args.report_test else "")
    out = args.out or Path("results") / f"sweep_{args.experiment.stem}_{time.strftime('%Y%m%d-%H%M%S')}"
    grid = parse_grid(args.grid, type(settings))
    check_writable(out)
    rows = run_sweep(args.experiment, settings, grid, args.seeds, out, progress=not args.no_progress)
    header = (f"Sweep of {args.experiment} over {', '.join(key for key, _ in grid)}: {args.seeds} seed(s), "
              f"{describe(budget)} per grid point; other settings {' '.join(overrides) or 'as in the experiment'}. "
              f"Validation NME % of the checkpoint validation chose, mean ± std over seeds.")
    print("\n" + write_sweep_report(rows, grid, out, header))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
