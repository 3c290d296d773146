"""One optimizer step, shared by training, its throughput probe and the speed tool."""
from __future__ import annotations

import math

import torch

from heatnet.config import Settings
from heatnet.method import Method
from heatnet.errors import HeatnetError
from heatnet.samples import to_device_batch
from heatnet.runtime import Precision


class NonFiniteLoss(HeatnetError, RuntimeError):
    """Training diverged; the last good checkpoint is kept."""

    same_in_every_process = False


def make_optimizer(model: torch.nn.Module, s: Settings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)


def training_step(method: Method, optimizer, scaler, precision: Precision, grad_clip: float, batch: dict,
                  lr: float, device: torch.device, model: torch.nn.Module | None = None) -> torch.Tensor:
    """One optimizer step on a batch; returns its loss, detached, on the device. On the CPU a
    non-finite loss raises NonFiniteLoss before the update; on a GPU, where that check would wait
    for the device every step, the caller checks the losses it reads every few steps
    (`check_finite`). `model` (default: the method's) runs the forward pass: a
    DistributedDataParallel wrapper averages the gradients of all processes during backward."""
    images, points, visibility = to_device_batch(batch, device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with precision.autocast():
        outputs = (model or method.model)(images)  # (B, K, H, W) heatmaps or (B, K, 2) coordinates
    loss = method.loss(outputs, points, visibility)
    if device.type != "cuda":
        check_finite(loss)
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.unscale_(optimizer)  # clip the true gradients
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(method.model.parameters(), grad_clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach()


def check_finite(loss: torch.Tensor) -> None:
    value = loss.item()
    if not math.isfinite(value):
        raise NonFiniteLoss(f"loss became {value}")
