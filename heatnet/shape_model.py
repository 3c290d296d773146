"""Statistical point-distribution model: Procrustes-aligned mean shape plus PCA modes.

Fitted once from the 300-W training shapes by tools/make_shape_model.py and shipped as
heatnet/assets/shape_model_68.npz; the synthetic faces draw their shapes from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHIPPED_68 = Path(__file__).parent / "assets" / "shape_model_68.npz"


def normalise_shape(shape: np.ndarray) -> np.ndarray:
    """(K, 2) shape translated to zero centroid and scaled to unit RMS radius."""
    centred = shape - shape.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def align_to(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Similarity (rotation, scale, translation) that best maps `shape` onto `reference`, applied."""
    a, b = normalise_shape(shape), normalise_shape(reference)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))  # no reflections
    rot = u @ np.diag([1.0, d]) @ vt
    return (a @ rot) * ((s[0] + d * s[1]) / (a**2).sum())  # least-squares scale


def procrustes_mean(shapes: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes analysis of (N, K, 2) shapes: (mean (K, 2), aligned (N, K, 2))."""
    mean = normalise_shape(shapes[0])
    for _ in range(iterations):
        aligned = np.stack([align_to(s, mean) for s in shapes])
        mean = normalise_shape(aligned.mean(axis=0))
    return mean, aligned


@dataclass
class ShapeModel:
    mean: np.ndarray  # (K, 2), zero centroid, unit RMS radius
    modes: np.ndarray  # (M, K, 2) orthonormal
    stddev: np.ndarray  # (M,) standard deviation of each mode's coefficient

    @classmethod
    def fit(cls, shapes: np.ndarray, num_modes: int = 12) -> "ShapeModel":
        mean, aligned = procrustes_mean(shapes)
        deviations = (aligned - mean).reshape(len(shapes), -1)
        _, s, vt = np.linalg.svd(deviations, full_matrices=False)
        return cls(mean, vt[:num_modes].reshape(num_modes, -1, 2), s[:num_modes] / np.sqrt(len(shapes) - 1))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, mean=self.mean.astype(np.float32), modes=self.modes.astype(np.float32),
                            stddev=self.stddev.astype(np.float32))

    @classmethod
    def load(cls, path: Path = SHIPPED_68) -> "ShapeModel":
        with np.load(path) as f:
            return cls(f["mean"].astype(np.float64), f["modes"].astype(np.float64), f["stddev"].astype(np.float64))

    def sample(self, rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
        """A random (K, 2) shape: mean + sum of modes with Gaussian coefficients (clipped at 3 sd)."""
        coef = np.clip(rng.standard_normal(len(self.stddev)), -3, 3) * self.stddev * spread
        return self.mean + np.tensordot(coef, self.modes, axes=1)
