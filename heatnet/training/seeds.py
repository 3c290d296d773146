"""Several seeds of one experiment under one step budget, continuing where a killed set stopped."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from heatnet.config import Settings
from heatnet.training.budget import Steps, with_budget
from heatnet.training.loop import resume, train
from heatnet.training.result import RunResult, read_result


def train_seeds(experiment: str | Path, settings: Settings, seeds: Sequence[int], runs_dir: Path,
                progress: bool = False) -> list[RunResult]:
    """Train each of `seeds` (e.g. range(3)) into runs_dir/seed<N> under one step budget: a time
    budget is converted into steps on the first seed and replayed on the others. A seed whose run
    finished is read back from its metrics.json and one that was interrupted is resumed, so a
    killed benchmark or sweep continues where it stopped."""
    results, steps = [], None
    for seed in seeds:
        run_dir = Path(runs_dir) / f"seed{seed}"
        result = read_result(run_dir)
        if result is None or not result.finished:
            if (run_dir / "last.pt").is_file():
                result = resume(run_dir, progress=progress)
            else:
                seeded = dataclasses.replace(settings, seed=seed)
                result = train(experiment, with_budget(seeded, Steps(steps)) if steps else seeded, run_dir, progress=progress)
        steps = steps or result.budget["total_steps"]
        results.append(result)
    return results
