"""What a run reports: one dataclass, written to and read from its metrics.json in one place.
Metric summaries (the history's entries, the test) stay dicts keyed by metric name and unit."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from heatnet.files import write_atomic

# How a run that did not reach its end stopped: its metrics.json holds the history so far, no test.
UNFINISHED = ("interrupted", "save failed")


@dataclass
class RunResult:
    run_dir: str
    stopped_by: str  # epochs, step budget, early stopping; or interrupted / save failed (UNFINISHED)
    steps: int
    samples: int  # trained on: images that failed to decode are not counted
    train_time_s: float  # optimizer steps and data loading only
    best_nme: float  # lowest validation NME %, inf without validation
    best_epoch: int
    selection: dict  # which checkpoint the test used, and why
    budget: dict  # how the step budget was fixed (and extended)
    history: list[dict] = field(default_factory=list)  # one entry per epoch: loss, rate, validation metrics
    test: dict | None = None  # the test split's metrics, read once on the chosen checkpoint

    @property
    def final(self) -> dict:
        """The last epoch's entry."""
        return self.history[-1] if self.history else {}

    @property
    def finished(self) -> bool:
        return self.stopped_by not in UNFINISHED

    @property
    def validation_nme(self) -> float:
        """The NME % validation chose by (the last epoch's without a best)."""
        return self.best_nme if math.isfinite(self.best_nme) else self.final.get("nme_%", math.nan)

    def write(self, run_dir: Path) -> None:
        plain = {key: value for key, value in dataclasses.asdict(self).items() if value is not None}
        write_atomic(Path(run_dir) / "metrics.json", json.dumps({**plain, "final": self.final}, indent=2).encode())


def read_result(run_dir: Path) -> RunResult | None:
    """A run folder's metrics.json, or None when it has none."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(RunResult)}
    return RunResult(**{key: value for key, value in stored.items() if key in names})
