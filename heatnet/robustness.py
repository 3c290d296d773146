"""Shift robustness: how far a model's predictions move when the face crop moves by a few pixels.

    rows = shift_robustness(method, make_dataset(s, "test"), s, device, shifts=(1, 2, 3, 4))

A model that were exactly shift-equivariant would predict the same points in the original image
wherever the crop lies. Strided layers break that (Zhang 2019, "Making convolutional networks
shift-invariant again"); BlurPool and dense heatmaps are two answers. Each shift of d input
pixels is taken right, left, down and up; a row gives the NME over the four and the drift: the
NME of the moved crop's predictions measured against the unmoved crop's predictions.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from heatnet.crop import CropJitter
from heatnet.config import Settings
from heatnet.method import Method
from heatnet.samples import LandmarkDataset
from heatnet.evaluation import Evaluation, evaluate
from heatnet.loading import make_loader
from heatnet.metrics import per_image_nme
from heatnet.runtime import Precision


def _moved(dataset: LandmarkDataset, dx: float, dy: float) -> LandmarkDataset:
    moved = copy.copy(dataset)
    moved.jitter = CropJitter(shift=(dx / dataset.size, dy / dataset.size))  # a fraction of the crop side
    return moved


def _sorted(result: Evaluation) -> np.ndarray:
    return result.predictions[np.argsort(result.indices)]  # (N, K, 2) in dataset order


def shift_robustness(method: Method, dataset: LandmarkDataset, s: Settings, device: torch.device,
                     shifts: tuple[int, ...] = (1, 2, 3, 4), precision: Precision | None = None) -> list[dict]:
    """One row per shift d (input pixels, 0 first): NME %, its change from d = 0, and the drift
    (mean NME % of the moved predictions against the unmoved ones) over the four directions."""
    if dataset.augmentation is not None:
        raise ValueError("shift robustness is measured on crops without augmentation")
    base = evaluate(method, make_loader(dataset, s), device, precision=precision)
    _, _, visibility, normaliser = base.errors.arrays()
    order = np.argsort(base.indices)
    visibility, normaliser, reference = visibility[order], normaliser[order], _sorted(base)
    base_nme = base.errors.summary()["nme_%"]
    rows = [{"shift_px": 0, "nme_%": base_nme, "nme_change_%": 0.0, "drift_%": 0.0}]
    for d in shifts:
        nmes, drifts = [], []
        for dx, dy in ((d, 0), (-d, 0), (0, d), (0, -d)):
            result = evaluate(method, make_loader(_moved(dataset, dx, dy), s), device, precision=precision)
            nmes.append(result.errors.summary()["nme_%"])
            drifts.append(100 * np.nanmean(per_image_nme(_sorted(result), reference, visibility, normaliser)))
        rows.append({"shift_px": d, "nme_%": float(np.mean(nmes)), "nme_change_%": float(np.mean(nmes) - base_nme),
                     "drift_%": float(np.mean(drifts))})
    return rows
