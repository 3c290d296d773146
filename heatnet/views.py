"""Views of data and models, as images (H x W x 3 uint8 RGB) or matplotlib figures; the
command line is tools/visualize.py.

    dataset_view("synthetic", "train", None, count=16, size=128, seed=0)   # plain and augmented crops
    heatmaps_view(checkpoint, "val", root, 8)  filters_view(checkpoint)     scatter_view(checkpoint, "val", root, 256)
    curves_view(run_dirs)                      learning_view(run_dirs)      predictions_view(checkpoint, "test", root, 8)
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from heatnet.augment import Augmentation
from heatnet.config import ConfigError
from heatnet.samples import ImageError, LandmarkDataset, collate, has_samples, to_device_batch, warn_skipped
from heatnet.datasets import load_split
from heatnet.drawing import draw_points, error_curve_figure, grid, heatmap_overlay, learning_curves_figure, roll_figure, plt
from heatnet.evaluation import evaluate, load_trained
from heatnet.geometry import apply_affine
from heatnet.loading import make_dataset, make_loader


def dataset_view(name: str, split: str, root, count: int, size: int, seed: int):
    """Two rows per group: plain crops, then the same samples augmented (H x W x 3 uint8).
    Images that do not decode are left out with a warning."""


    source = load_split(name, split, root)
    picks = np.random.default_rng(seed).choice(len(source), size=min(count, len(source)), replace=False)
    plain = LandmarkDataset(source, size, seed=seed)
    augmented = LandmarkDataset(source, size, augmentation=Augmentation(), seed=seed)
    cells, skipped = [], []
    columns = 8
    for start in range(0, len(picks), columns):
        for ds in (plain, augmented):
            for i in picks[start : start + columns]:
                try:
                    item = ds[int(i)]
                except ImageError as e:
                    skipped.append(str(e))
                    continue
                image = item["image"].permute(1, 2, 0).numpy()
                cells.append(draw_points(image, item["points"].numpy(), item["visibility"].numpy(), source.scheme,
                                         radius=2, scale=2))
            if cells:
                cells += [np.full_like(cells[-1], 255)] * ((-len(cells)) % columns)
    warn_skipped(f"{name}/{split}", list(dict.fromkeys(skipped)))  # each one failed in both rows: once each
    if not cells:
        raise ImageError(f"{name}/{split}: none of the {len(picks)} images picked could be read")
    return grid(cells, columns)


def load_model_and_split(checkpoint: Path, split: str, root, count: int):
    """(method, settings, dataset) of a checkpoint and the first `count` samples of one of its
    dataset's splits (0: all)."""


    method, s, _ = load_trained(checkpoint)
    s = replace(s, data_root=str(root) if root else s.data_root, workers=0)
    return method, s, make_dataset(s, split, count)


def heatmaps_view(checkpoint: Path, split: str, root, count: int):
    """Each crop with the maximum over points of its predicted heatmaps, and the decoded points."""


    method, s, dataset = load_model_and_split(checkpoint, split, root, count)
    batch = collate(dataset.__getitems__(list(range(len(dataset)))))
    if not has_samples(batch):
        raise ConfigError(f"{s.dataset}/{split}: none of the images could be read")
    images, _, _ = to_device_batch(batch, torch.device("cpu"))
    with torch.no_grad():
        outputs = method.model.eval()(images)
        points, _ = method.decode(outputs)
    if outputs.dim() != 4:
        raise ConfigError(f"{checkpoint}: a regression model has no heatmaps")
    maps = method.loss.activate(outputs).amax(dim=1).numpy()  # (B, H, W)
    crops = batch["image"].permute(0, 2, 3, 1).numpy()
    crops = np.repeat(crops, 3, axis=3) if crops.shape[3] == 1 else crops
    cells = [draw_points(heatmap_overlay(crop, heatmap), p, radius=1, colour=(255, 255, 255), scale=2)
             for crop, heatmap, p in zip(crops, maps, points.numpy())]
    return grid(cells, 4)


def filters_view(checkpoint: Path):
    """The first convolution's filters, each scaled to its own range, 8x enlarged (RGB filters in
    colour; others as the mean over input channels)."""


    method, _, _ = load_trained(checkpoint)
    conv = next(m for m in method.model.modules() if isinstance(m, torch.nn.Conv2d))
    weights = conv.weight.detach().float().numpy()  # (O, I, k, k)
    cells = []
    for kernel in weights:
        kernel = kernel.transpose(1, 2, 0) if kernel.shape[0] == 3 else kernel.mean(0)[:, :, None].repeat(3, 2)
        kernel = (kernel - kernel.min()) / max(float(kernel.max() - kernel.min()), 1e-12)
        size = 8 * kernel.shape[0]
        cell = cv2.resize((255 * kernel).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
        cells.append(cv2.copyMakeBorder(cell, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    return grid(cells, 8)


def scatter_view(checkpoint: Path, split: str, root, count: int):
    """Predicted against true x and y (original pixels) over the split's samples."""


    method, s, dataset = load_model_and_split(checkpoint, split, root, count)
    result = evaluate(method, make_loader(dataset, s), torch.device("cpu"))
    pred, truth, visibility, _ = result.errors.arrays()
    visible = visibility > 0
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for axis, name, ax in ((0, "x", axes[0]), (1, "y", axes[1])):
        t, p = truth[..., axis][visible], pred[..., axis][visible]
        ax.scatter(t, p, s=2, alpha=0.3)
        low, high = min(t.min(), p.min()), max(t.max(), p.max())
        ax.plot([low, high], [low, high], "k--", linewidth=1)
        ax.set_xlabel(f"true {name} (px)")
        ax.set_ylabel(f"predicted {name} (px)")
    fig.suptitle(f"{checkpoint} on {s.dataset}/{split}: NME {result.errors.summary()['nme_%']:.2f} %")
    fig.tight_layout()
    return fig


def curves_view(runs: list[Path]):
    """The test split's cumulative error curves of several run folders."""



    curves = {}
    for run in runs:
        metrics = run / "metrics.json" if run.is_dir() else run
        if not metrics.is_file():
            raise ConfigError(f"{run}: no metrics.json (give finished run folders)")
        result = json.loads(metrics.read_text())
        if "test" not in result:
            raise ConfigError(f"{metrics}: the run has no test block")
        curves[run.parent.name + "/" + run.name if run.is_dir() else str(run)] = np.array(result["test"]["per_image_nme"])
    return error_curve_figure(curves, title="test split")


def learning_view(runs: list[Path]):
    """Training loss and validation NME by epoch of several run folders."""


    histories = {}
    common = Path(os.path.commonpath([run.resolve() for run in runs]))
    for run in runs:
        if not (run / "metrics.json").is_file():
            raise ConfigError(f"{run}: no metrics.json (give finished run folders)")
        # named by what tells the runs apart: sweep/runs/point/seed0 -> "sweep: point/seed0"
        name = str(run.resolve().relative_to(common)).replace("/runs/", ": ") if len(runs) > 1 else run.name
        histories[name] = json.loads((run / "metrics.json").read_text())["history"]
    return learning_curves_figure(histories)


def predictions_view(checkpoint: Path, split: str, root, count: int):
    """The `count` // 2 best and the rest worst images of the split by NME: crops with the truth
    (green) and the prediction (red), the image's NME written on it."""


    method, s, dataset = load_model_and_split(checkpoint, split, root, 0)
    result = evaluate(method, make_loader(dataset, s), torch.device("cpu"))
    per_image = result.errors.per_image()  # (N,) fractions, in result.indices order
    order = np.argsort(per_image)
    best, worst = order[: count // 2], order[::-1][: count - count // 2]
    cells = []
    for position in [*best, *worst]:
        item = dataset[int(result.indices[position])]
        crop = item["image"].permute(1, 2, 0).numpy()
        scale = max(1, 256 // crop.shape[0])
        truth = item["points"].numpy()
        predicted = apply_affine(result.predictions[position].astype(np.float64), item["affine"].numpy().astype(np.float64))
        cell = draw_points(draw_points(crop, truth, colour=(40, 200, 40), scale=scale), predicted * scale + (scale - 1) / 2,
                           colour=(230, 30, 30))
        cv2.putText(cell, f"{100 * per_image[position]:.1f}%", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 0), 1, cv2.LINE_AA)
        cells.append(cell)
    return grid(cells, max(1, count // 2))


def rolls_view(reports: list[Path], title: str = ""):
    """Faces found and NME against the turn of the photos, from folders holding a
    roll_robustness.json (tools/evaluate.py --rotations, tools/mediapipe_rolls.py)."""
    results = {}
    for folder in reports:
        path = folder / "roll_robustness.json"
        if not path.is_file():
            raise ConfigError(f"{folder}: no roll_robustness.json (made by tools/evaluate.py --rotations)")
        report = json.loads(path.read_text())
        model = Path(report["model"]).stem if report["model"].endswith(".pt") else report["model"]
        results[f"{model}, {report['detector']}"] = report["rows"]
    return roll_figure(results, title)
