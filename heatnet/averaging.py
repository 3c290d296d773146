"""Exponential moving average of a model's weights (Polyak averaging, as in timm's ModelEmaV2).

    average = WeightAverage(model, decay=0.999)
    ...optimizer.step(); average.update(model, step)   # after every step
    evaluate(average.model)                            # what validation, best.pt and predict use

Batch-norm running statistics are averaged with the weights; integer buffers are copied.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay after `step` updates; ramped up from 0.1 so that the first, far-from-final
        weights are forgotten quickly (a fine-tune starts from good weights, a scratch run does not)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards `model`'s weights after optimizer step number `step` (1-based)."""
        decay = self.decay_at(step)
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1 - decay)
            else:
                average.copy_(current)
