"""Drawing landmarks, heatmaps and error curves, for TensorBoard and tools/visualize.py."""
from __future__ import annotations

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from heatnet.schemes import LandmarkScheme

REGION_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                  (70, 240, 240), (240, 50, 230)]


def draw_points(image: np.ndarray, points: np.ndarray, visibility: np.ndarray | None = None,
                scheme: LandmarkScheme | None = None, colour: tuple[int, int, int] | None = None,
                radius: int = 2, scale: int = 1) -> np.ndarray:
    """RGB uint8 image with points drawn (coloured by region unless `colour` is given), after an
    optional nearest-neighbour `scale` so small crops stay legible. Invisible points are hollow."""
    out = np.ascontiguousarray(image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image[..., :1], 3, 2))
    if scale != 1:
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    region = scheme.region_of() if scheme is not None else np.zeros(len(points), int)
    vis = np.ones(len(points)) if visibility is None else visibility
    for i, (x, y) in enumerate(points):
        c = colour or REGION_COLOURS[region[i] % len(REGION_COLOURS)]
        centre = (int(round((x + 0.5) * scale - 0.5)), int(round((y + 0.5) * scale - 0.5)))
        cv2.circle(out, centre, radius, c, -1 if vis[i] > 0 else 1, cv2.LINE_AA)
    return out


def grid(images: list[np.ndarray], columns: int = 8) -> np.ndarray:
    """Equal-sized H x W x 3 images tiled row by row (blank cells pad the last row)."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    out = np.full((rows * h, min(columns, len(images)) * w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    return out


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """A (H, W) heatmap, normalised to its max, over an RGB image (resized to the image)."""
    hm = cv2.resize(heatmap.astype(np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    hm = np.clip(hm / max(float(hm.max()), 1e-12), 0, 1)
    colour = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    return (0.5 * image + 0.5 * colour).astype(np.uint8)


def error_curve_figure(curves: dict[str, np.ndarray], threshold: float = 0.10, title: str = "") -> plt.Figure:
    """Cumulative error curves of per-image NME (fractions) for one or more methods."""
    from heatnet.metrics import auc, cumulative_error_curve

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, nme in curves.items():
        errors, fraction = cumulative_error_curve(nme, threshold)
        ax.plot(100 * errors, 100 * fraction, label=f"{name} (AUC {100 * auc(nme, threshold):.1f})")
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("images (%)")
    ax.set_xlim(0, 100 * threshold)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def learning_curves_figure(histories: dict[str, list[dict]], title: str = "") -> plt.Figure:
    """Training loss and validation NME by epoch (a run's metrics.json "history") for each run."""
    fig, (loss_axis, nme_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        epochs = [entry["epoch"] for entry in history]
        loss_axis.plot(epochs, [entry["train_loss"] for entry in history], marker=".", label=name)
        nme_axis.plot(epochs, [entry.get("nme_%", np.nan) for entry in history], marker=".", label=name)
    loss_axis.set_ylabel("training loss")
    loss_axis.set_yscale("log")
    nme_axis.set_ylabel("validation NME (%)")
    nme_axis.set_yscale("log")
    for axis in (loss_axis, nme_axis):
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3, which="both")
    nme_axis.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def region_bars_figure(regions: dict[str, dict[str, float]]) -> plt.Figure:
    """Grouped bars of NME (%) per face region for each method: regions[method][region]."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    region_names = list(next(iter(regions.values())))
    width = 0.8 / len(regions)
    for i, (name, values) in enumerate(regions.items()):
        ax.bar(np.arange(len(region_names)) + i * width, [values[r] for r in region_names], width, label=name)
    ax.set_xticks(np.arange(len(region_names)) + 0.4 - width / 2, region_names)
    ax.set_ylabel("NME (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roll_figure(reports: dict[str, list[dict]], title: str = "") -> plt.Figure:
    """Faces found (%) and NME (%) of the 51 inner points against the angle photos were turned by,
    for each method's roll_robustness.json rows (heatnet.rotation; tools/mediapipe_rolls.py)."""
    fig, (found_axis, nme_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in reports.items():
        angles = [row["angle_deg"] for row in rows]
        found_axis.plot(angles, [100 * row["found"] / row["faces"] for row in rows], marker=".", label=name)
        nme_axis.plot(angles, [row["inner_nme_%"] for row in rows], marker=".", label=name)
    found_axis.set(xlabel="photo turned by (degrees, counter-clockwise)", ylabel="faces found (%)", ylim=(-2, 102))
    nme_axis.set(xlabel="photo turned by (degrees, counter-clockwise)", ylabel="NME of the found faces, 51 inner points (%)",
                 yscale="log")
    for axis in (found_axis, nme_axis):
        axis.set_xticks(range(0, 361, 45))
        axis.grid(alpha=0.3)
    nme_axis.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
