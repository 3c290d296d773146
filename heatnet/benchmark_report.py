"""The benchmark's reports: mean and spread over seeds, the accuracy and cost tables, NME against
budget, and finished benchmarks read back from their results.json and drawn together (other
seeds, methods or budgets trained by separate commands). heatnet.benchmark trains and measures;
tools/benchmark.py is the command line over both."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heatnet.config import ConfigError, to_plain
from heatnet.distributed import world_from_environment
from heatnet.drawing import error_curve_figure, region_bars_figure
from heatnet.files import check_writable
from heatnet.metrics import region_nmes
from heatnet.runtime import choose_device


def mean_and_spread(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Per key: (mean, sample standard deviation; 0 for one seed) over seeds."""
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    out = {}
    for k in keys:
        values = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return out


def markdown_table(results: dict[str, dict[str, tuple[float, float]]], columns: list[tuple[str, str, str]]) -> str:
    """results[method][key] = (mean, spread); columns = (key, header, format)."""
    lines = ["| method | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for name, stats in results.items():
        cells = []
        for key, _, fmt in columns:
            if key not in stats or np.isnan(stats[key][0]):  # e.g. a score column for a head without scores
                cells.append("-")
                continue
            mean, spread = stats[key]
            cells.append(format(mean, fmt) + (f" ± {format(spread, fmt)}" if spread else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ACCURACY = [("val_nme_%", "val NME % (chose the checkpoint)", ".2f"), ("nme_%", "NME %", ".2f"),
            ("nme_median_%", "median %", ".2f"), ("fr@10_%", "FR@10 %", ".1f"), ("auc@10_%", "AUC@10 %", ".1f"),
            ("mae_px", "MAE px", ".2f"), ("rmse_px", "RMSE px", ".2f"),
            ("steps", "steps", ".0f"), ("samples", "samples", ".0f")]
COST = [("input_px", "input px", ".0f"), ("params_m", "params M", ".1f"), ("gflops", "GFLOPs", ".2f"),
        ("train_time_s", "train s", ".0f"), ("samples_per_s", "samples/s", ".1f"), ("latency_b1_ms", "ms b1", ".1f"),
        ("latency_b32_ms", "ms b32", ".0f"), ("onnxruntime_ms", "onnxruntime ms/face (2 threads)", ".1f"),
        ("score_error_rank", "score-error rank corr. (val)", ".2f")]


def write_report(results: dict[str, dict], out: Path, dataset: str, seeds: int | str, budget: str,
                 changes: dict[str, Any], accuracy_columns: list = ACCURACY, cost_columns: list = COST) -> str:
    """results.md (returned), results.json (with the step budgets to replay, each method's seeds
    and its first seed's per-image NME), results.csv and plots. results: method -> run_method's
    result (or merge_finished's: a curve may be None)."""
    out.mkdir(parents=True, exist_ok=True)
    device = choose_device()
    device_text = device.type + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    processes = world_from_environment().size
    device_text += f", {processes} processes (torchrun)" if processes > 1 else ""
    first = next(iter(results.values()))
    header = (f"Dataset {dataset}: test split, read once per run on the checkpoint chosen by validation NME; "
              f"{first['normaliser']} NME; crops from the ground-truth landmark box. {seeds} seed(s), {budget}, "
              f"device {device_text}. Mean ± std over seeds.")
    stats = {name: r["stats"] for name, r in results.items()}
    decoders = {name: r["decoders"] for name, r in results.items() if r["decoders"]}
    decoder_names = list(next(iter(decoders.values()))) if decoders else []
    decoder_table = "\n".join(["| heatmap method | " + " | ".join(decoder_names) + " |", "|---|" + "---|" * len(decoder_names)]
                              + [f"| {m} | " + " | ".join(f"{v:.2f}" for v in d.values()) + " |" for m, d in decoders.items()])
    report = (f"{header}\n\nAccuracy (test, after the validation NME that chose each checkpoint):\n\n"
              f"{markdown_table(stats, accuracy_columns)}\n\n"
              f"Cost (times vary from run to run; the accuracy table does not):\n\n{markdown_table(stats, cost_columns)}\n")
    if decoders:
        report += (f"\nValidation NME % by decoder on the same weights (first seed; codec floor: ground truth "
                   f"encoded and decoded):\n\n{decoder_table}\n")
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps({
        "header": header, "normaliser": first["normaliser"],
        "settings": {key: to_plain(value) for key, value in changes.items()},
        "step_budgets": {n: r["step_budget"] for n, r in results.items()},
        "budgets": {n: r["budget"] for n, r in results.items()}, "per_seed": {n: r["rows"] for n, r in results.items()},
        "seeds": {n: r["seeds"] for n, r in results.items()}, "decoders": decoders,
        "curves": {n: [float(v) for v in r["curve"]] for n, r in results.items() if r["curve"] is not None}}, indent=1))
    keys = [k for k, _, _ in accuracy_columns + cost_columns]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method"] + [f"{k}_{stat}" for k in keys for stat in ("mean", "std")])
        for name, st in stats.items():
            writer.writerow([name] + [v for k in keys for v in st.get(k, (np.nan, np.nan))])
    curves = {n: np.asarray(r["curve"]) for n, r in results.items() if r["curve"] is not None}
    if curves:  # results.json before 2026-12-04 kept no per-image NME
        error_curve_figure(curves, title=f"{dataset} / test").savefig(out / "error_curves.png", dpi=120)
    regions = {n: {region: mean for region, (mean, _) in region_nmes(r["stats"]).items()} for n, r in results.items()}
    region_bars_figure(regions).savefig(out / "regions.png", dpi=120)
    return report


def write_budget_report(by_budget: dict[float, dict[str, dict]], out: Path, dataset: str, unit: str = "min") -> str:
    """The test NME of every method at every training budget: budgets.md (returned), budgets.json
    (per seed) and nme_vs_budget.png (mean with the seed spread as error bars, log budget axis).
    by_budget: budget -> method -> {"rows": per-seed rows with nme_%, "step_budget": steps}; a
    budget in minutes ("min": converted to steps once per method) or optimizer steps ("steps": the
    same for every method). A budget may lack a method and budgets may differ in seeds."""
    from heatnet.drawing import plt

    budgets = sorted(by_budget)
    methods = list(dict.fromkeys(m for b in budgets for m in by_budget[b]))
    how = ("minutes on this machine, converted to steps once per method and budget" if unit == "min"
           else "optimizer steps, the same for every method")
    lines = [f"Dataset {dataset}: test NME % (mean ± std over each cell's seeds) by training budget ({how}).", "",
             "| method | " + " | ".join(f"{b:g} {unit}" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in methods:
        cells, points = [], []
        for b in budgets:
            if method not in by_budget[b]:
                cells.append("-")
                continue
            result = by_budget[b][method]
            seeds = len(result["rows"])
            mean, spread = mean_and_spread(result["rows"])["nme_%"]
            extra = f", {result['step_budget']} steps" if unit == "min" and result["step_budget"] else ""
            cells.append(f"{mean:.2f}" + (f" ± {spread:.2f}" if seeds > 1 else "")
                         + f" ({seeds} seed{'s' * (seeds > 1)}{extra})")
            points.append((b, mean, spread))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
        x, means, spreads = zip(*points)
        ax.errorbar(x, means, yerr=spreads, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("training budget (minutes)" if unit == "min" else "training budget (optimizer steps)")
    ax.set_ylabel("test NME (%)")
    ax.set_title(f"{dataset}: NME against training budget")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "nme_vs_budget.png", dpi=120)
    report = "\n".join(lines) + "\n"
    (out / "budgets.md").write_text(report)
    (out / "budgets.json").write_text(json.dumps({
        f"{b:g}": {m: {"nme_per_seed": [row["nme_%"] for row in r["rows"]], "steps": r["step_budget"]}
                   for m, r in by_budget[b].items()} for b in budgets}, indent=1))
    return report


def results_file(folder: Path) -> Path:
    """A benchmark's results.json, given its folder or the file itself."""
    return Path(folder) / "results.json" if Path(folder).is_dir() or not Path(folder).suffix else Path(folder)


def read_finished(folder: Path) -> dict:
    """A finished benchmark's results.json (`folder`: its folder or the file): a ConfigError names
    the file and what it lacks."""
    path = results_file(folder)
    try:
        saved = json.loads(path.read_text())
        saved["settings"]["dataset"], saved["step_budgets"], saved["per_seed"]  # what every reader needs
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a finished benchmark's results ({e})") from None
    return saved


def merge_finished(folders: list[Path]) -> tuple[dict[str, Any], dict[float, dict[str, dict]]]:
    """Finished benchmarks of one dataset and settings drawn together from their results.json: other
    methods, other seeds (a table trained one seed or method per command), other step budgets. The
    settings, and per step budget and method write_report's input, its rows in seed order (the
    decoders and the error curve: the lowest seed's). A method's seed at one budget in two folders,
    or other settings (the data folder aside), is a ConfigError naming the file."""
    if not folders:
        raise ConfigError("no benchmark folders to report on")
    if len({Path(f).resolve() for f in folders}) < len(folders):
        raise ConfigError(f"a benchmark folder given twice: {[str(f) for f in folders]}")
    settings, first, merged, where = None, None, {}, {}
    for folder in folders:
        path, saved = results_file(folder), read_finished(folder)
        ours = {k: v for k, v in saved["settings"].items() if k != "data_root"}
        settings, first = (settings, first) if settings is not None else (ours, path)
        differ = sorted(k for k in {*ours, *settings} if ours.get(k) != settings.get(k))
        if differ:
            raise ConfigError(f"{path}: other settings than {first} ("
                              + ", ".join(f"{k}: {ours.get(k)!r} against {settings.get(k)!r}" for k in differ)
                              + "); draw together benchmarks of one dataset, input size and profile")
        # results.json before 2026-12-04 kept the normaliser only in its header, and no seed numbers
        found = re.search(r"; ([\w -]+) NME;", saved.get("header", ""))
        normaliser = saved.get("normaliser") or (found.group(1) if found else "")
        for method, rows in saved["per_seed"].items():
            seeds = saved.get("seeds", {}).get(method, list(range(len(rows))))
            steps = float(saved["step_budgets"][method])
            cell = merged.setdefault((steps, method), {"rows": {}, "step_budget": saved["step_budgets"][method],
                                                      "budget": saved.get("budgets", {}).get(method, {}),
                                                      "normaliser": normaliser, "decoders": {}, "curve": None})
            for seed, row in zip(seeds, rows):
                if seed in cell["rows"]:
                    raise ConfigError(f"{path}: {method} seed {seed} at {steps:g} steps is also in "
                                      f"{where[steps, method, seed]}")
                cell["rows"][seed], where[steps, method, seed] = row, path
            if seeds and min(seeds) == min(cell["rows"]):  # a benchmark measures these on its first seed
                cell["decoders"] = saved.get("decoders", {}).get(method, {})
                cell["curve"] = saved.get("curves", {}).get(method)
    by_budget = {}
    for (steps, method), cell in sorted(merged.items(), key=lambda item: item[0][0]):
        seeds = sorted(cell["rows"])
        rows = [cell["rows"][seed] for seed in seeds]
        by_budget.setdefault(steps, {})[method] = {**cell, "rows": rows, "seeds": seeds, "stats": mean_and_spread(rows)}
    return settings, by_budget


def finished_step_budgets(folders: list[Path]) -> tuple[str, dict[float, dict[str, dict]]]:
    """Finished benchmarks of one dataset, each trained with one step budget for every method
    (tools/benchmark.py --steps), read back from their results.json and drawn together
    (merge_finished: a budget's methods and seeds may come from several folders): the dataset and
    write_budget_report's input (unit "steps")."""
    for folder in folders:
        step_budgets = read_finished(folder)["step_budgets"]
        if len(set(step_budgets.values())) > 1:
            raise ConfigError(f"{results_file(folder)}: its methods trained different step budgets "
                              f"{step_budgets}; give benchmarks run with --steps")
    settings, by_budget = merge_finished(folders)
    return settings["dataset"], by_budget


def write_finished_budget_report(folders: list[Path], out: Path) -> str:
    """write_budget_report (unit "steps") over finished step-budget benchmarks, into `out`."""
    dataset, by_budget = finished_step_budgets(folders)
    check_writable(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    return write_budget_report(by_budget, Path(out), dataset, unit="steps")


def write_merged_report(folders: list[Path], out: Path) -> str:
    """One benchmark's report (write_report) drawn together from finished benchmarks of one budget:
    e.g. a 3-seed table whose seeds and methods were trained by separate commands (merge_finished)."""
    settings, by_budget = merge_finished(folders)
    results = {}
    for cells in by_budget.values():
        for method, cell in cells.items():
            if method in results:
                raise ConfigError(f"{method} trained {results[method]['step_budget']} and {cell['step_budget']} "
                                  f"steps in {[str(f) for f in folders]}: merge one budget's runs (--budget-report "
                                  f"draws several budgets together)")
            results[method] = cell
    check_writable(out)
    seeds = sorted({len(r["rows"]) for r in results.values()})
    steps = sorted({r["step_budget"] for r in results.values()})
    budget = (f"{steps[0]} steps per method" if len(steps) == 1 else "each method's step budget in results.json")
    return write_report(results, Path(out), settings["dataset"], "-".join(map(str, sorted({seeds[0], seeds[-1]}))),
                        f"{budget}, drawn together from {', '.join(map(str, folders))}", settings)
