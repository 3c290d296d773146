"""tools/sweep.py: a grid run one run after another; a killed sweep finishes only what is missing."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import wait_for
from heatnet.benchmark_report import (finished_step_budgets, merge_finished, read_finished, write_finished_budget_report,
                                      write_merged_report)
from heatnet.config import ConfigError
from heatnet.method import HeatmapSettings
from heatnet.sweep import grid_points, parse_grid, point_name
from heatnet.training import steps_for_minutes

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--input_size=64", "--train_limit=32", "--val_limit=16", "--batch_size=8", "--workers=0", "--log_images=0",
        "--threads=2"]


def test_grid_parsing_keeps_commas_inside_parentheses_and_types_every_value():
    from heatnet.codecs import Dark, SoftArgmax

    grid = parse_grid(["sigma=1,1.5", "decoder=Dark(),SoftArgmax(window_radius=3, iterations=2)"], HeatmapSettings)
    assert grid == [("sigma", [1.0, 1.5]), ("decoder", [Dark(), SoftArgmax(window_radius=3, iterations=2)])]
    points = grid_points(grid)
    assert len(points) == 4 and points[1] == {"sigma": 1.0, "decoder": SoftArgmax(window_radius=3, iterations=2)}
    assert point_name(points[1]) == "sigma=1.0_decoder=SoftArgmax-window_radius=3-correct_truncation=True-iterations=2"
    for bad in (["sigma"], ["sigma="], ["sigma=1", "sigma=2"], ["sigmaa=1"], ["sigma=x"]):
        with pytest.raises(ConfigError):
            parse_grid(bad, HeatmapSettings)


def _sweep(out: Path) -> list[str]:
    return [sys.executable, "tools/sweep.py", "experiments/unet_kl.py", "--grid", "sigma=1.5,2", "--grid", "stride=2,4",
            "--epochs", "1", "--out", str(out), "--no-progress", *TINY]


@pytest.mark.slow  # about a minute of processes started, killed and resumed: make test-slow
def test_a_killed_sweep_finishes_only_the_missing_runs(tmp_path):
    out = tmp_path / "sweep"
    runs = out / "runs"
    proc = subprocess.Popen(_sweep(out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list(runs.glob("*/seed0/metrics.json"))) >= 2, proc)  # two of the four runs done
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in runs.glob("*/seed0/metrics.json")}
    assert 2 <= len(done) < 4 and not (out / "sweep.md").exists()
    again = subprocess.run(_sweep(out), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in done.items())  # finished runs were not redone
    table = (out / "sweep.md").read_text()
    for point in ("| 1.5 | 2 |", "| 1.5 | 4 |", "| 2.0 | 2 |", "| 2.0 | 4 |"):
        assert point in table
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert len(rows) == 4 and all(len(r["val_nme_per_seed"]) == 1 and r["steps"] == 4 for r in rows)
    assert all("test_nme_per_seed" not in r for r in rows)  # a sweep reads no test data unless asked
    assert len(list(runs.glob("*/seed0/best.pt"))) == 4 and not list(runs.glob("*/seed0/last.pt"))
    assert (out / "sweep.png").stat().st_size > 1000 and len((out / "sweep.csv").read_text().splitlines()) == 5
    assert (out / "learning_curves.png").stat().st_size > 1000


@pytest.mark.slow  # 35 s of training; steps_for_minutes is tested on its own in tests/test_resume.py
def test_the_benchmark_draws_nme_against_training_budget(tmp_path):
    out = tmp_path / "budgets"
    result = subprocess.run([sys.executable, "tools/benchmark.py", "--quick", "--methods", "regression_cnn",
                             "--budgets", "0.02,0.05", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    budgets = json.loads((out / "budgets.json").read_text())
    assert list(budgets) == ["0.02", "0.05"]
    for b in budgets:  # each budget's minutes became steps at the rate measured for it (not a clock comparison)
        run = json.loads((out / f"budget_{b}min/results.json").read_text())["budgets"]["regression_cnn"]
        (settings,) = [json.loads(p.read_text()) for p in (out / f"budget_{b}min").rglob("seed0/settings.json")]
        expected = steps_for_minutes(float(b), run["measured_samples_per_s"], settings["batch_size"])
        assert budgets[b]["regression_cnn"]["steps"] == run["total_steps"] == expected >= 1
    assert (out / "nme_vs_budget.png").stat().st_size > 10_000 and "| regression_cnn |" in (out / "budgets.md").read_text()
    for b in budgets:  # each budget has the benchmark's own report and runs
        assert (out / f"budget_{b}min/results.md").is_file()


@pytest.mark.slow  # two quick benchmarks of one small method
def test_a_later_seed_trained_alone_merges_with_the_first(tmp_path):
    def quick(out: Path, *seeds: str) -> None:
        result = subprocess.run([sys.executable, "tools/benchmark.py", "--quick", "--methods", "regression_cnn",
                                 "--out", str(out), "--no-progress", *seeds], cwd=ROOT, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]

    quick(tmp_path / "seed0")
    quick(tmp_path / "seed1", "--first-seed", "1")
    assert [p.name for p in (tmp_path / "seed1/runs/regression_cnn").iterdir()] == ["seed1"]
    settings = json.loads((tmp_path / "seed1/runs/regression_cnn/seed1/settings.json").read_text())
    assert settings["seed"] == 1
    later = json.loads((tmp_path / "seed1/results.json").read_text())
    assert later["seeds"] == {"regression_cnn": [1]} and len(later["curves"]["regression_cnn"]) > 0
    merged = subprocess.run([sys.executable, "tools/benchmark.py", "--merge", f"{tmp_path / 'seed1'},{tmp_path / 'seed0'}",
                             "--out", str(tmp_path / "both")], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert merged.returncode == 0, merged.stderr[-2000:]
    both = json.loads((tmp_path / "both/results.json").read_text())
    first = json.loads((tmp_path / "seed0/results.json").read_text())
    assert both["seeds"] == {"regression_cnn": [0, 1]}
    assert [r["nme_%"] for r in both["per_seed"]["regression_cnn"]] == [
        first["per_seed"]["regression_cnn"][0]["nme_%"], later["per_seed"]["regression_cnn"][0]["nme_%"]]
    assert both["curves"] == first["curves"] and "2 seed(s)" in (tmp_path / "both/results.md").read_text()


def test_finished_step_budgets_are_drawn_together_with_each_cells_seeds(tmp_path):
    """--budget-report: the 5-minute heads benchmark kept in docs/ (one seed) beside a 3-seed one
    at 2250 steps that lacks a method; each cell's mean and sample std recomputed here."""
    five = tmp_path / "five"
    five.mkdir()
    saved = json.loads((ROOT / "docs/studies/heads_5min/results.json").read_text())
    (five / "results.json").write_text(json.dumps(saved))
    twenty = {**saved, "step_budgets": {"w300_unet_js": 2250, "w300_rle": 2250},
              "per_seed": {"w300_unet_js": [{"nme_%": v} for v in (3.39, 3.39, 3.43)],
                           "w300_rle": [{"nme_%": v} for v in (4.0, 4.5, 5.5)]}}
    (tmp_path / "twenty").mkdir()
    (tmp_path / "twenty/results.json").write_text(json.dumps(twenty))
    out = tmp_path / "report"  # made by the report
    assert finished_step_budgets([tmp_path / "twenty", five])[0] == "300w"
    table = write_finished_budget_report([tmp_path / "twenty", five], out)
    assert (out / "budgets.md").read_text() == table
    assert "| method | 562 steps | 2250 steps |" in table  # budgets in order, whatever order they were given
    five_min_js = saved["per_seed"]["w300_unet_js"][0]["nme_%"]
    rle = np.array([4.0, 4.5, 5.5])
    assert f"| w300_unet_js | {five_min_js:.2f} (1 seed) | 3.40 ± 0.02 (3 seeds) |" in table
    assert f"| w300_rle | {saved['per_seed']['w300_rle'][0]['nme_%']:.2f} (1 seed) | " \
           f"{rle.mean():.2f} ± {rle.std(ddof=1):.2f} (3 seeds) |" in table
    assert "| w300_simcc | 5.39 (1 seed) | - |" in table  # not run at 2250 steps
    budgets = json.loads((out / "budgets.json").read_text())
    assert budgets["2250"]["w300_rle"] == {"nme_per_seed": [4.0, 4.5, 5.5], "steps": 2250}
    assert (out / "nme_vs_budget.png").stat().st_size > 10_000


def test_a_budget_report_names_the_benchmark_it_cannot_use(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "results.json").write_text(json.dumps({"settings": {"dataset": "300w"}, "per_seed": {},
                                                    "step_budgets": {"a": 100, "b": 181}}))
    with pytest.raises(ConfigError, match=f"{mixed / 'results.json'}: its methods trained different step budgets"):
        finished_step_budgets([mixed])
    with pytest.raises(ConfigError, match=f"{tmp_path / 'results.json'}: not a finished benchmark's results"):
        finished_step_budgets([tmp_path])
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({"settings": {"dataset": "imm"}, "per_seed": {},
                                                    "step_budgets": {"a": 181}}))
    (mixed / "results.json").write_text(json.dumps({"settings": {"dataset": "300w"}, "per_seed": {},
                                                    "step_budgets": {"a": 100}}))
    with pytest.raises(ConfigError, match=r"other settings than .*mixed/results.json \(dataset: 'imm' against '300w'\)"):
        finished_step_budgets([mixed, other])
    with pytest.raises(ConfigError, match="a benchmark folder given twice"):
        finished_step_budgets([mixed, mixed])
    with pytest.raises(ConfigError, match="no benchmark folders"):
        finished_step_budgets([])


def _later_seeds(saved: dict, methods: dict[str, list[float]], first_seed: int = 1) -> dict:
    """A benchmark in today's results.json format that trained `methods` (method -> test NME per
    seed) from `first_seed` on, with `saved`'s settings and budget."""
    rows = {m: [{**saved["per_seed"][m][0], "nme_%": v} for v in nmes] for m, nmes in methods.items()}
    return {**saved, "normaliser": "inter-ocular", "step_budgets": {m: saved["step_budgets"][m] for m in methods},
            "per_seed": rows, "seeds": {m: list(range(first_seed, first_seed + len(v))) for m, v in methods.items()},
            "decoders": {}, "curves": {m: [1.0, 2.0, 30.0] for m in methods}}


def test_benchmarks_of_other_seeds_are_merged_into_one_table(tmp_path):
    """--merge: the 20-minute heads benchmark kept in docs/ (seed 0, results.json without seed
    numbers) with two later benchmarks, seeds 1-2 of two heads and seed 1 of a third given first:
    rows in seed order, mean and sample std recomputed, the decoders and error curve of seed 0."""
    saved = json.loads((ROOT / "docs/studies/heads_20min_seed0/results.json").read_text())
    for name, later in (("seed12", {"w300_unet_js": [3.0, 3.1], "w300_rle": [4.0, 4.4]}),
                        ("seed1", {"w300_simcc": [3.9]})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_later_seeds(saved, later)))
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0/results.json").write_text(json.dumps(saved))
    folders = [tmp_path / "seed1", tmp_path / "seed0", tmp_path / "seed12"]
    settings, by_budget = merge_finished(folders)
    assert settings["input_size"] == 160 and list(by_budget) == [2250.0]
    merged = by_budget[2250.0]
    assert list(merged) == ["w300_simcc"] + [m for m in saved["per_seed"] if m != "w300_simcc"]  # first seen first
    js = merged["w300_unet_js"]
    first_js = saved["per_seed"]["w300_unet_js"][0]["nme_%"]
    assert js["seeds"] == [0, 1, 2] and [r["nme_%"] for r in js["rows"]] == [first_js, 3.0, 3.1]
    nmes = [first_js, 3.0, 3.1]
    assert js["stats"]["nme_%"] == pytest.approx((np.mean(nmes), np.std(nmes, ddof=1)))
    assert js["decoders"] == saved["decoders"]["w300_unet_js"] and js["curve"] is None  # seed 0's: no curve kept then
    assert merged["w300_simcc"]["seeds"] == [0, 1] and merged["w300_offsets"]["seeds"] == [0]
    assert js["normaliser"] == "inter-ocular"  # read from the older file's header

    out = tmp_path / "merged"
    table = write_merged_report(folders, out)
    assert f"1-3 seed(s), 2250 steps per method, drawn together from {folders[0]}, {folders[1]}, " in table
    row = next(line for line in table.splitlines() if line.startswith("| w300_unet_js |"))
    assert f"{np.mean(nmes):.2f} ± {np.std(nmes, ddof=1):.2f}" in row
    cost_row = [line for line in table.splitlines() if line.startswith("| w300_regression_resnet18 |")][1]
    assert cost_row.endswith("| - |") and "nan" not in table  # the L1 regressor has no score to rank errors by
    again = json.loads((out / "results.json").read_text())  # merged results merge again
    assert again["seeds"]["w300_rle"] == [0, 1, 2] and again["normaliser"] == "inter-ocular"
    assert not (out / "error_curves.png").exists()  # no head has seed 0's per-image NME here
    (tmp_path / "seed0/results.json").write_text(json.dumps(_later_seeds(saved, {"w300_unet_js": [3.2]}, 0)))
    write_merged_report(folders, out)
    assert (out / "error_curves.png").stat().st_size > 10_000


def test_a_merge_names_the_seed_or_setting_that_clash(tmp_path):
    saved = json.loads((ROOT / "docs/studies/heads_20min_seed0/results.json").read_text())
    for name, content in (("a", saved), ("b", _later_seeds(saved, {"w300_rle": [4.0]}, 0)),
                          ("small", {**saved, "settings": {**saved["settings"], "input_size": 96}}),
                          ("elsewhere", _later_seeds({**saved, "settings": {**saved["settings"], "data_root": "/d"}},
                                                     {"w300_rle": [4.1]})),
                          ("five", json.loads((ROOT / "docs/studies/heads_5min/results.json").read_text()))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(content))
    assert read_finished(tmp_path / "a/results.json") == read_finished(tmp_path / "a") == saved  # the file or its folder
    with pytest.raises(ConfigError, match=f"{tmp_path / 'b/results.json'}: w300_rle seed 0 at 2250 steps is also in "
                                          f"{tmp_path / 'a/results.json'}"):
        merge_finished([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match=f"{tmp_path / 'small/results.json'}: other settings than .*input_size: 96 "
                                          f"against 160"):
        merge_finished([tmp_path / "a", tmp_path / "small"])
    elsewhere = merge_finished([tmp_path / "a", tmp_path / "elsewhere"])[1][2250.0]  # the same data, elsewhere
    assert elsewhere["w300_rle"]["seeds"] == [0, 1]
    with pytest.raises(ConfigError, match="w300_unet_js trained 562 and 2250 steps"):
        write_merged_report([tmp_path / "a", tmp_path / "five"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
