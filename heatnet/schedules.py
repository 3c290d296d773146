"""Learning-rate schedules: typed values whose factor is a pure function of the step.

    Settings(schedule=Cosine())                  # --schedule=Cosine
    Settings(schedule=StepDecay(every_epochs=10, gamma=0.1))   # --schedule="StepDecay(every_epochs=10)"

A schedule never looks at the clock: a wall-clock budget is converted into a number of steps
once, before training (heatnet.training), so the same run always sees the same learning rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Cosine:
    """Half a cosine from 1 down to 0 over the whole budget."""

    def __call__(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))


@dataclass(frozen=True)
class StepDecay:
    """Multiply by `gamma` every `every_epochs` epochs."""

    every_epochs: float = 10.0
    gamma: float = 0.1

    def __call__(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        return self.gamma ** int(step / steps_per_epoch // self.every_epochs)


@dataclass(frozen=True)
class Exponential:
    """Multiply by `gamma` per epoch, continuously."""

    gamma: float = 0.9

    def __call__(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        return self.gamma ** (step / steps_per_epoch)


@dataclass(frozen=True)
class Constant:
    def __call__(self, step: int, total_steps: int, steps_per_epoch: int) -> float:
        return 1.0


Schedule = Cosine | StepDecay | Exponential | Constant


def lr_factor(schedule: Schedule, warmup_epochs: float, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at `step`: linear warm-up, then the schedule."""
    warm = min(1.0, (step + 1) / (warmup_epochs * steps_per_epoch)) if warmup_epochs > 0 else 1.0
    return warm * schedule(step, total_steps, steps_per_epoch)
