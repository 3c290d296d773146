"""Landmark metrics in original-image pixels; one definition used everywhere.

NME per image: mean over visible points of ||p - g|| / normaliser (one normaliser kind for a
whole split, heatnet.samples.Normaliser); dataset NME = mean over images, in %. Images with no
visible point have no NME: they are left out of every metric and counted. Region NME: the same
per image over the region's visible points, then the mean over images. FR@t: share of images
with NME > t. AUC@t: area under the cumulative error curve on [0, t] divided by t, in closed form
mean(max(0, 1 - e / t)). MAE: mean |dx|, |dy| in pixels. RMSE: sqrt(mean squared coordinate
error), as Kaggle's facial-keypoints score.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from heatnet.schemes import LandmarkScheme


def per_image_nme(pred: np.ndarray, gt: np.ndarray, visibility: np.ndarray, normaliser: np.ndarray) -> np.ndarray:
    """(N, K, 2) predictions and truth, (N, K) visibility, (N,) normalisers -> (N,) NME (fraction);
    NaN for an image without a visible point."""
    dist = np.linalg.norm(pred - gt, axis=-1)  # (N, K)
    count = visibility.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (dist * visibility).sum(-1) / np.maximum(count, 1) / normaliser, np.nan)


def cumulative_error_curve(nme: np.ndarray, threshold: float, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of images with NME <= e for e on [0, threshold]."""
    errors = np.linspace(0, threshold, steps)
    fraction = (np.sort(nme)[None, :] <= errors[:, None]).mean(axis=1)
    return errors, fraction


def auc(nme: np.ndarray, threshold: float) -> float:
    """(1/t) * integral over [0, t] of the share of images with NME <= e; each image adds
    (t - e_i) / t when e_i < t, so this is exact."""
    return float(np.maximum(0.0, 1.0 - nme / threshold).mean())


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

    def _scored(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
        """The arrays of the images with a visible point (the others may lack a normaliser too),
        and how many were left out."""
        pred, gt, vis, norm = self.arrays()
        scored = vis.sum(-1) > 0
        return (pred[scored], gt[scored], vis[scored], norm[scored]), int((~scored).sum())

    def summary(self, threshold: float = 0.10) -> dict[str, float]:
        """Every key names its unit: `_%` (of the normaliser; FR and AUC in % of images and of
        the area, at a threshold written in NME %), `_px` (original pixels), or none (counts)."""
        (pred, gt, vis, norm), without = self._scored()
        nme = per_image_nme(pred, gt, vis, norm)
        diff = np.abs(pred - gt)[vis > 0]  # (visible points, 2)
        out = {
            "nme_%": 100 * float(nme.mean()),
            "nme_median_%": 100 * float(np.median(nme)),
            f"fr@{100 * threshold:g}_%": 100 * failure_rate(nme, threshold),  # threshold in NME %, like the values
            f"auc@{100 * threshold:g}_%": 100 * auc(nme, threshold),
            "mae_px": float(diff.mean()),
            "rmse_px": float(np.sqrt((diff**2).mean())),
            "images": float(len(nme)),
            "images_without_points": float(without),
        }
        for region, idx in self.scheme.regions.items():
            idx = list(idx)
            region_nme = per_image_nme(pred[:, idx], gt[:, idx], vis[:, idx], norm)  # NaN: region not visible
            out[f"nme_{region}_%"] = 100 * float(np.nanmean(region_nme)) if np.isfinite(region_nme).any() else float("nan")
        return out

    def per_image(self) -> np.ndarray:
        """(N,) NME of the images that have a visible point."""
        return per_image_nme(*self._scored()[0])

    def per_point(self) -> np.ndarray:
        """(K,) NME of each point over the images where it is visible, in % (0 where never)."""
        (pred, gt, vis, norm), _ = self._scored()
        dist = np.linalg.norm(pred - gt, axis=-1) / norm[:, None]
        return 100 * (dist * vis).sum(0) / np.maximum(vis.sum(0), 1)


def region_nmes(summary: dict[str, float]) -> dict[str, float]:
    """{region: NME %} from a `LandmarkErrors.summary()` (its `nme_<region>_%` keys)."""
    overall = ("nme_%", "nme_median_%")
    return {key[len("nme_"):-len("_%")]: value for key, value in summary.items()
            if key.startswith("nme_") and key.endswith("_%") and key not in overall}
