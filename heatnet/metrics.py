"""Landmark metrics in original-image pixels; one definition used everywhere.

NME per image: mean over visible points of ||p - g|| / normaliser; dataset NME = mean over
images, in %. FR@t: share of images with NME > t. AUC@t: area under the cumulative error
curve on [0, t] (Simpson's rule), divided by t. MAE: mean |dx|, |dy| in pixels. RMSE:
sqrt(mean squared coordinate error), as Kaggle's facial-keypoints score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.integrate import simpson

from heatnet.schemes import LandmarkScheme


def per_image_nme(pred: np.ndarray, gt: np.ndarray, visibility: np.ndarray, normaliser: np.ndarray) -> np.ndarray:
    """(N, K, 2) predictions and truth, (N, K) visibility, (N,) normalisers -> (N,) NME (fraction)."""
    dist = np.linalg.norm(pred - gt, axis=-1)  # (N, K)
    count = np.maximum(visibility.sum(-1), 1)
    return (dist * visibility).sum(-1) / count / normaliser


def cumulative_error_curve(nme: np.ndarray, threshold: float, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of images with NME <= e for e on [0, threshold]."""
    errors = np.linspace(0, threshold, steps)
    fraction = (np.sort(nme)[None, :] <= errors[:, None]).mean(axis=1)
    return errors, fraction


def auc(nme: np.ndarray, threshold: float) -> float:
    errors, fraction = cumulative_error_curve(nme, threshold)
    return float(simpson(fraction, x=errors) / threshold)


def failure_rate(nme: np.ndarray, threshold: float) -> float:
    return float((nme > threshold).mean())


@dataclass
class LandmarkErrors:
    """Accumulates predictions over batches; `summary()` gives every metric at once."""

    scheme: LandmarkScheme
    pred: list[np.ndarray] = field(default_factory=list)
    gt: list[np.ndarray] = field(default_factory=list)
    visibility: list[np.ndarray] = field(default_factory=list)
    normaliser: list[np.ndarray] = field(default_factory=list)

    def add(self, pred: torch.Tensor | np.ndarray, gt, visibility, normaliser) -> None:
        """(B, K, 2) predictions and truth in original pixels, (B, K) visibility, (B,) normaliser."""
        for store, value in ((self.pred, pred), (self.gt, gt), (self.visibility, visibility), (self.normaliser, normaliser)):
            store.append(value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.concatenate(x) for x in (self.pred, self.gt, self.visibility, self.normaliser))

    def summary(self, threshold: float = 0.10) -> dict[str, float]:
        pred, gt, vis, norm = self.arrays()
        nme = per_image_nme(pred, gt, vis, norm)
        diff = np.abs(pred - gt)[vis > 0]  # (visible points, 2)
        dist = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]  # (N, K)
        out = {
            "nme": 100 * float(nme.mean()),
            "nme_median": 100 * float(np.median(nme)),
            f"fr@{threshold:g}": 100 * failure_rate(nme, threshold),
            f"auc@{threshold:g}": 100 * auc(nme, threshold),
            "mae_px": float(diff.mean()),
            "rmse_px": float(np.sqrt((diff**2).mean())),
            "images": float(len(nme)),
        }
        for region, idx in self.scheme.regions.items():
            idx = list(idx)
            out[f"nme_{region}"] = 100 * float((dist[:, idx] * vis[:, idx]).sum() / max(vis[:, idx].sum(), 1))
        return out

    def per_image(self) -> np.ndarray:
        pred, gt, vis, norm = self.arrays()
        return per_image_nme(pred, gt, vis, norm)

    def per_point(self) -> np.ndarray:
        """(K,) NME of each point, in %."""
        pred, gt, vis, norm = self.arrays()
        dist = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]
        return 100 * (dist * vis).sum(0) / np.maximum(vis.sum(0), 1)
