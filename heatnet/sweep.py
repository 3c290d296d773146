"""A grid of settings, trained one run after another under one budget, and its table.

    grid = parse_grid(["sigma=1.5,2", "stride=2,4"], type(settings))   # [("sigma", [1.5, 2.0]), ("stride", [2, 4])]
    rows = run_sweep("experiments/unet_kl.py", with_budget(settings, Epochs(3)), grid, seeds=2, out=Path("results/s"))
    write_sweep_report(rows, grid, out, "...")

Every point of the grid is trained for each seed by heatnet.training.train_seeds (a time budget
converted into steps on seed 0 of that point), into out/runs/<point>/seed<N>; finished runs are
read back and interrupted ones resumed, so running the same sweep again finishes only what is
missing. The metric is the validation NME of the checkpoint validation chose: a sweep tunes on
validation, and reads no test data unless asked.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import re
import typing
from pathlib import Path
from typing import Any

import numpy as np

from heatnet.config import ConfigError, Settings, parse_value, to_plain
from heatnet.drawing import learning_curves_figure
from heatnet.training import train_seeds

Grid = list[tuple[str, list[Any]]]  # (setting, its typed values), in the order given


def split_values(text: str) -> list[str]:
    """'1,2' -> ['1', '2']; commas inside parentheses stay: 'Dark(),SoftArgmax(window_radius=3, iterations=2)'."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    return values + [current.strip()]


def parse_grid(specs: list[str], settings_class: type[Settings]) -> Grid:
    """`key=v1,v2` specs (the command line's --grid) -> [(key, [typed v1, typed v2])], each value
    parsed by the field's annotation; ConfigError on a malformed, unknown or repeated key."""
    hints = typing.get_type_hints(settings_class)
    grid: Grid = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {spec!r} should look like key=value1,value2")
        if key not in hints:
            raise ConfigError(f"unknown setting --{key}; valid: {', '.join(sorted(hints))}")
        if key in dict(grid):
            raise ConfigError(f"--grid {key} is given twice")
        grid.append((key, [parse_value(key, text, hints[key]) for text in split_values(values)]))
    if not grid:
        raise ConfigError("give at least one --grid key=value1,value2")
    return grid


def grid_points(grid: Grid) -> list[dict[str, Any]]:
    """Every combination, the last key varying fastest."""
    keys = [key for key, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(values for _, values in grid))]


def point_text(point: dict[str, Any]) -> dict[str, str]:
    """A grid point's values as written in settings.json: 1.5, SoftArgmax(window_radius=3), FPN."""
    return {key: str(to_plain(value)) for key, value in point.items()}


def point_name(point: dict[str, Any]) -> str:
    """A folder name for a grid point: sigma=1.5_stride=2 (characters a path dislikes become '-')."""
    return "_".join(f"{key}={re.sub(r'[^A-Za-z0-9._=+-]+', '-', value).strip('-')}"
                    for key, value in point_text(point).items())


def run_sweep(experiment: str | Path, settings: Settings, grid: Grid, seeds: int, out: Path,
              progress: bool = False) -> list[dict]:
    """One row per grid point (`settings` with the point's values): the point's values, validation
    NME per seed with mean and spread, steps, and the test NME per seed when the runs read a test
    split. Every point's settings are checked before the first run trains."""
    points = grid_points(grid)
    point_settings = [dataclasses.replace(settings, **point) for point in points]  # a ConfigError now, not later
    rows = []
    for point, settings_of_point in zip(points, point_settings):
        print(f"sweep: {point_name(point)}")
        runs = train_seeds(experiment, settings_of_point, range(seeds), out / "runs" / point_name(point), progress)
        val = np.array([run.validation_nme for run in runs])
        row = {**point_text(point), "val_nme": float(val.mean()), "val_nme_std": float(val.std(ddof=1)) if len(val) > 1
               else 0.0, "val_nme_per_seed": val.tolist(), "steps": runs[0].steps, "run": point_name(point)}
        if all(run.test is not None for run in runs):
            row["test_nme_per_seed"] = [run.test["nme_%"] for run in runs]
        rows.append(row)
    return rows


def write_sweep_report(rows: list[dict], grid: Grid, out: Path, header: str) -> str:
    """sweep.md (returned), sweep.csv, sweep.json, sweep.png (validation NME over the grid) and
    learning_curves.png (training loss and validation NME by epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key, _ in grid]
    has_test = all("test_nme_per_seed" in row for row in rows)
    columns = keys + ["val NME %", "seeds", "steps"] + (["test NME %"] if has_test else [])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    best = min(rows, key=lambda row: row["val_nme"])
    for row in rows:
        val = f"{row['val_nme']:.2f}" + (f" ± {row['val_nme_std']:.2f}" if len(row["val_nme_per_seed"]) > 1 else "")
        cells = [row[key] for key in keys] + [f"**{val}**" if row is best else val, str(len(row["val_nme_per_seed"])),
                                              str(row["steps"])]
        if has_test:
            cells.append(f"{np.mean(row['test_nme_per_seed']):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    report = f"{header}\n\n" + "\n".join(lines) + f"\n\nLowest validation NME: {best['run']}.\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text(report)
    plain_grid = [(key, [to_plain(value) for value in values]) for key, values in grid]
    (out / "sweep.json").write_text(json.dumps({"header": header, "grid": plain_grid, "rows": rows}, indent=1))
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys + ["val_nme_mean", "val_nme_std", "seeds", "steps"] + (["test_nme_mean"] if has_test else []))
        for row in rows:
            writer.writerow([row[key] for key in keys] + [row["val_nme"], row["val_nme_std"],
                            len(row["val_nme_per_seed"]), row["steps"]]
                            + ([float(np.mean(row["test_nme_per_seed"]))] if has_test else []))
    figure, axis = plt.subplots(figsize=(6, 4))
    first, rest = keys[0], keys[1:]
    for series in sorted({tuple(row[k] for k in rest) for row in rows}):
        chosen = [row for row in rows if tuple(row[k] for k in rest) == series]
        label = ", ".join(f"{k}={v}" for k, v in zip(rest, series)) or None
        axis.errorbar([row[first] for row in chosen], [row["val_nme"] for row in chosen],
                      yerr=[row["val_nme_std"] for row in chosen], marker="o", capsize=3, label=label)
    axis.set_xlabel(first)
    axis.set_ylabel("validation NME %")
    if rest:
        axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "sweep.png", dpi=120)
    plt.close(figure)
    histories = {}
    for row in rows:  # seed 0 of each point
        metrics = out / "runs" / row["run"] / "seed0" / "metrics.json"
        if metrics.is_file():
            histories[row["run"]] = json.loads(metrics.read_text())["history"]
    if histories:
        figure = learning_curves_figure(histories, "seed 0 of each grid point")
        figure.savefig(out / "learning_curves.png", dpi=120)
        plt.close(figure)
    return report
