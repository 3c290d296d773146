"""Exponential moving average of a model's weights (Polyak averaging, as in timm's ModelEmaV2).

    average = WeightAverage(model, decay=0.999)
    ...optimizer.step(); average.update(step)   # after every step
    evaluate(average.model)                     # what validation, best.pt and predict use

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
        # paired once: the optimizer and load_state_dict change both models' tensors in place
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._floats = tuple(map(list, zip(*[pair for pair in pairs if pair[0].is_floating_point()])))
        self._others = [pair for pair in pairs if not pair[0].is_floating_point()]

    def decay_at(self, step: int) -> float:
        """The decay after `step` updates; ramped up from 0.1 so that the first, far-from-final
        weights are forgotten quickly (a fine-tune starts from good weights, a scratch run does not)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the model's weights after optimizer step number `step` (1-based)."""
        averages, currents = self._floats
        torch._foreach_lerp_(averages, currents, 1 - self.decay_at(step))  # one batched op over all tensors
        for average, current in self._others:
            average.copy_(current)
