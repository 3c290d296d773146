"""tools/sweep.py: a grid run one run after another; a killed sweep finishes only what is missing."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_for
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
