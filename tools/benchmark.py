"""Regression vs heatmaps, one honest table: the same data, splits, input size, augmentation and
budget for every method, over N seeds. Validation chooses each run's checkpoint; the test split
is read once per run, on that checkpoint.

    python tools/benchmark.py                          # synthetic faces, 2 min per method: ~15 minutes on 2 cores
    python tools/benchmark.py --quick                  # smoke run, ~1 minute (make bench-quick)
    python tools/benchmark.py --dataset 300w --data-root ../shared/datasets --minutes 20 --seeds 3
    python tools/benchmark.py --methods unet_kl,experiments/my_idea.py --epochs 10
    python tools/benchmark.py --dataset 300w --budgets 1,5,20,60 --seeds 3      # NME against training budget
    python tools/benchmark.py --dataset 300w --steps 2250 --seeds 2 --first-seed 1 --out results/b_seeds12  # more seeds
    python tools/benchmark.py --merge results/b,results/b_seeds12 --out results/b_all    # one table, from both
    python tools/benchmark.py --dataset 300w --own-input-size --methods w300_unet_js,w300_regression_resnet18
    python tools/benchmark.py --dataset 300w --input-size 160 --steps 2250 --seeds 3 \
        --methods w300_unet_js,w300_simcc,w300_offsets,w300_integral,w300_regression_resnet18,w300_rle  # heads
    torchrun --standalone --nproc-per-node 4 tools/benchmark.py --dataset 300w --epochs 60 --out results/b4  # DDP runs

A minutes budget is converted once per method into optimizer steps (timed on that method's
first seed, before its training) and every seed trains that many steps; results.json records
the conversion and --budget-from results/<earlier>/results.json replays it, so a rerun gives the
same accuracy table.
Writes results/benchmark_<dataset>_<time>/: results.md, results.json, results.csv,
error_curves.png, regions.png, and each run's folder (checkpoints, TensorBoard). Rerun a stopped
benchmark with the same --out and it continues: finished runs are read back, an interrupted one
resumes from its last.pt.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from heatnet.cli import fail, parse_list, tool

ROOT = Path(__file__).resolve().parents[1]
# the default methods by name: experiments/<name>.py (any other experiment there, or file, works too)
METHODS = ("regression_resnet18", "unet_kl", "unet_mse", "fpn_kl", "unet_softargmax", "fpn_mse", "regression_cnn")
DEFAULT = "regression_resnet18,unet_kl,unet_mse,fpn_kl,unet_softargmax"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=DEFAULT, help=f"comma-separated names of experiments/*.py ({', '.join(METHODS)}, "
                   "...) or experiment files")
    p.add_argument("--dataset", default="synthetic", help="a name in heatnet.datasets.DATASETS")
    p.add_argument("--data-root", help="default: $HEATNET_DATA")
    p.add_argument("--seeds", type=int, default=1, help="runs per method and budget, seeds 0..N-1 (see --first-seed)")
    p.add_argument("--first-seed", type=int, default=0, help="train seeds K..K+N-1 instead (add seeds to a benchmark)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training budget per method, converted once into steps (default 2)")
    budget.add_argument("--epochs", type=int, help="epochs per method")
    budget.add_argument("--steps", type=int, help="optimizer steps per method")
    budget.add_argument("--budget-from", type=Path, help="the step budgets recorded in an earlier benchmark (its "
                        "folder or results.json)")
    budget.add_argument("--budgets", help="comma-separated minutes (e.g. 1,5,20,60): the benchmark at each budget, "
                        "then NME against budget per method")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--input-size", type=int, default=128, help="the crop size every method trains at (default 128)")
    size.add_argument("--own-input-size", action="store_true",
                      help="each method at its experiment file's input size (tuned recipes at their own best size)")
    p.add_argument("--quick", action="store_true", help="a ~1 minute smoke run on a few images")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", type=Path, help="output folder (default: results/benchmark_<dataset>_<time>)")
    finished = p.add_mutually_exclusive_group()  # without training, from results.json, written to --out
    finished.add_argument("--budget-report", help="comma-separated folders of finished benchmarks, each run with one "
                          "--steps budget: NME against budget (a budget's methods and seeds may span folders)")
    finished.add_argument("--merge", help="comma-separated folders of finished benchmarks of one budget (other seeds "
                          "or methods): one report over all their runs")
    p.add_argument("--dlib", action="store_true", help="add dlib's 68-point predictor as a row (the [dlib] extra; "
                   "it was trained on all of 300-W, test images included)")
    return p.parse_args()


@tool
def main() -> int:
    args = parse_args()
    if args.budget_report or args.merge:  # finished benchmarks drawn together: nothing to train
        option = "--budget-report" if args.budget_report else "--merge"
        if not args.out:
            fail(f"{option}: give --out, the folder for the report")
        from heatnet.benchmark_report import write_finished_budget_report, write_merged_report
        folders = parse_list(args.budget_report or args.merge, Path, option, "folders")
        print((write_finished_budget_report if args.budget_report else write_merged_report)(folders, args.out))
        return 0
    if args.seeds < 1 or args.first_seed < 0:
        fail("--seeds must be at least 1 and --first-seed at least 0")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]  # experiments/<name>.py or a file
    experiments = {Path(n).stem: Path(n) if Path(n).is_file() else ROOT / "experiments" / f"{n}.py" for n in names}
    unknown = [n for n in names if not experiments[Path(n).stem].is_file()]
    if unknown:
        fail(f"unknown method(s) {unknown}; give names of experiments/*.py (e.g. {', '.join(METHODS)}) or "
             f"experiment files")
    budgets = list(parse_list(args.budgets, float, "--budgets", "positive minutes (e.g. 1,5,20)")) or [None]
    if any(b is not None and not b > 0 for b in budgets):
        fail(f"--budgets expects comma-separated positive minutes (e.g. 1,5,20), got {args.budgets!r}")

    from heatnet.benchmark import common_settings, dlib_result, method_settings, run_method  # after parsing: --help
    from heatnet.benchmark_report import read_finished, write_budget_report, write_report  # answers at once
    from heatnet.datasets import BadSamples, load_split
    from heatnet.files import check_writable
    from heatnet.training import Epochs, Minutes, Steps, describe

    recorded = read_finished(args.budget_from)["step_budgets"] if args.budget_from else {}

    def method_budget(name: str, minutes: float | None):
        """One method's training budget (`minutes`: one of --budgets)."""
        if minutes is not None:
            return Minutes(minutes)
        if name in recorded:
            return Steps(recorded[name])
        if args.quick:
            return Epochs(1)
        return Epochs(args.epochs) if args.epochs else Steps(args.steps) if args.steps else Minutes(args.minutes or 2.0)

    is_main = os.environ.get("RANK", "0") == "0"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not args.out:
        fail("under torchrun give --out (every process must name the same folder)")
    out = args.out or ROOT / "results" / f"benchmark_{args.dataset}_{time.strftime('%Y%m%d-%H%M%S')}"
    # what can be checked before the first method trains for minutes (the runs warn of bad samples)
    load_split(args.dataset, "test", args.data_root, bad=BadSamples("", quiet=True))
    check_writable(out)
    changes = common_settings(args.dataset, args.data_root, None if args.own_input_size else args.input_size, args.quick)
    dlib_row = {}
    if args.dlib and is_main:  # trained by dlib: the same row at every budget, measured once
        dlib_row["dlib (trained on all 300-W)"] = dlib_result(args.dataset, "test", Path(args.data_root) if args.data_root
                                                              else None, 48 if args.quick else 0)  # quick test_limit
    by_budget = {}
    for minutes in budgets:
        folder = out / f"budget_{minutes:g}min" if minutes is not None else out
        results = {}
        for stem, experiment in experiments.items():
            settings = method_settings(experiment, changes, method_budget(stem, minutes))
            results[stem] = run_method(experiment, settings, seeds, folder / "runs" / stem, not args.no_progress)
        results.update(dlib_row)
        if not is_main:  # rank 0 writes the report
            continue
        budget = ("quick profile" if args.quick and minutes is None else f"step budgets from {args.budget_from}"
                  if args.budget_from and minutes is None else describe(method_budget("", minutes)) + " per method")
        report = write_report(results, folder, args.dataset, args.seeds, budget, changes)
        print("\n" + report)
        by_budget[minutes] = results
        if args.budgets:  # after every budget, so a long sweep that stops shows the budgets it finished
            print("\n" + write_budget_report(by_budget, out, args.dataset))
    if is_main:
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
