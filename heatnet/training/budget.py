"""A run's budget, typed: so many epochs, so many optimizer steps, or so many minutes, which
are converted once into steps by timing training steps, and recorded.

    settings = with_budget(settings, Minutes(5))     # or Epochs(12), Steps(2000)
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass

from heatnet.config import Settings
from heatnet.method import Method
from heatnet.samples import has_samples
from heatnet.distributed import World
from heatnet.loading import TrainingInput
from heatnet.runtime import Precision, restore_rng_state, rng_state, synchronize
from heatnet.training.step import make_optimizer, training_step


@dataclass(frozen=True)
class Epochs:
    count: int


@dataclass(frozen=True)
class Steps:
    count: int


@dataclass(frozen=True)
class Minutes:
    minutes: float  # of training on this machine, converted once into steps


Budget = Epochs | Steps | Minutes


def with_budget(settings: Settings, budget: Budget) -> Settings:
    """The settings with this budget alone deciding when training ends (epochs=0: no epoch limit)."""
    if isinstance(budget, Epochs):
        return dataclasses.replace(settings, epochs=budget.count, max_steps=0, time_budget_min=0.0)
    if isinstance(budget, Steps):
        return dataclasses.replace(settings, epochs=0, max_steps=budget.count, time_budget_min=0.0)
    return dataclasses.replace(settings, epochs=0, max_steps=0, time_budget_min=budget.minutes)


def budget_of(settings: Settings) -> Budget:
    """The budget a run's settings give (a converted time budget counts as its steps)."""
    if settings.max_steps:
        return Steps(settings.max_steps)
    return Minutes(settings.time_budget_min) if settings.time_budget_min else Epochs(settings.epochs)


def describe(budget: Budget) -> str:
    if isinstance(budget, Epochs):
        return f"{budget.count} epochs"
    if isinstance(budget, Steps):
        return f"{budget.count} steps"
    return f"{budget.minutes:g} min converted to steps"


def total_steps(s: Settings, steps_per_epoch: int) -> int:
    """The step budget: the epochs, or max_steps when that comes first (a time budget has been
    converted into max_steps by then)."""
    by_epochs = s.epochs * steps_per_epoch if s.epochs else math.inf
    return int(min(by_epochs, s.max_steps or math.inf))


def ends_by_steps(s: Settings, total: int, steps_per_epoch: int) -> bool:
    """Whether the step budget, not the epochs, ends the run."""
    return not s.epochs or total < s.epochs * steps_per_epoch


def steps_for_minutes(minutes: float, samples_per_s: float, batch_size: int) -> int:
    """A time budget as optimizer steps at a measured training rate (at least one)."""
    return max(1, round(minutes * 60 * samples_per_s / batch_size))


def measure_samples_per_s(method: Method, s: Settings, train_input: TrainingInput, device, precision: Precision,
                          warmup: int = 3, steps: int = 10, world: World = World()) -> float:
    """Training throughput (data loading included) timed on a copy of the model and optimizer;
    the run's own weights and random generators are left as they were. In a distributed run
    each process times its share of the global batch (gradient exchange not included) and the
    rate is of global batches; every process gets rank 0's figure."""
    saved = rng_state()
    probe = copy.deepcopy(method)
    optimizer, scaler = make_optimizer(probe.model, s), precision.grad_scaler()
    batches = (batch for _ in range(warmup + steps) for batch in train_input.epoch(0))
    batches = (batch for batch in batches if has_samples(batch))
    for i, batch in zip(range(warmup + steps), batches):
        if i == warmup:
            start = time.perf_counter()
        training_step(probe, optimizer, scaler, precision, s.grad_clip, batch, s.lr * 1e-3, device)
    synchronize(device)
    rate = steps * s.batch_size / (time.perf_counter() - start)
    restore_rng_state(saved)
    return world.broadcast(rate)
