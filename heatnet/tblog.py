"""TensorBoard logging of a validation pass: metrics, drawn predictions, heatmaps, error curve."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from heatnet.config import Settings, settings_dict
from heatnet.method import Method
from heatnet.samples import LandmarkDataset, collate, has_samples, to_device_batch
from heatnet.drawing import draw_points, error_curve_figure, grid, heatmap_overlay
from heatnet.evaluation import Evaluation
from heatnet.metrics import region_nmes

HEATMAP_POINTS = {"ibug68": [30, 36, 45, 48], "wflw98": [54, 60, 72, 76], "imm58": [52, 13, 21, 39]}
METRIC_KEYS = ("nme_%", "nme_median_%", "fr@10_%", "auc@10_%", "mae_px", "rmse_px", "loss")


class NoEvents:
    """What the processes other than rank 0 of a distributed run log to: nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def log_validation(writer: SummaryWriter, method: Method, dataset: LandmarkDataset, result: Evaluation,
                   metrics: dict, step: int, device: torch.device, num_images: int) -> None:
    for key in METRIC_KEYS:
        writer.add_scalar(f"val/{key}", metrics[key], step)
    for region, value in region_nmes(metrics).items():
        writer.add_scalar(f"val_region/nme_{region}_%", value, step)
    writer.add_figure("val/error_curve", error_curve_figure({"val": result.errors.per_image()}), step)
    batch = collate(dataset.__getitems__(list(range(min(num_images, len(dataset))))))  # unreadable images left out
    if not has_samples(batch):
        return
    images, points, visibility = to_device_batch(batch, device)
    model = method.model
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outputs = model(images)
        pred, _ = method.decode(outputs)
    model.train(was_training)
    crops = batch["image"].permute(0, 2, 3, 1).numpy()  # (B, S, S, C)
    drawn = []
    for crop, gt, vis, p in zip(crops, points.cpu().numpy(), visibility.cpu().numpy(), pred.cpu().numpy()):
        im = draw_points(crop, gt, vis, colour=(0, 220, 0), radius=2, scale=2)
        drawn.append(_draw_scaled(im, p))
    writer.add_image("val/predictions (green truth, red prediction)", grid(drawn, 4), step, dataformats="HWC")
    if outputs.dim() == 4:  # heatmaps of a few points on the first image
        heatmaps = method.loss.activate(outputs[:1]).float().cpu().numpy()[0]
        chosen = [i for i in HEATMAP_POINTS.get(dataset.scheme.name, [0]) if i < heatmaps.shape[0]]
        crop = np.repeat(crops[0], 3, 2) if crops.shape[-1] == 1 else crops[0]
        overlays = [heatmap_overlay(crop, heatmaps[i]) for i in chosen]
        writer.add_image("val/heatmaps", grid(overlays, len(overlays)), step, dataformats="HWC")


def _draw_scaled(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Predictions on an image drawn at 2x (points given in the unscaled crop)."""
    return draw_points(image, (points + 0.5) * 2 - 0.5, None, colour=(255, 40, 40), radius=2)


def log_hparams(writer: SummaryWriter, settings: Settings, result) -> None:
    """The run's settings and final metrics (a heatnet.training.RunResult) in TensorBoard's HParams."""
    hparams = {k: v for k, v in settings_dict(settings).items() if isinstance(v, (int, float, str, bool))}
    results = {f"hparam/{k}": float(result.final[k]) for k in METRIC_KEYS if k in result.final}
    results["hparam/best_nme_%"] = float(result.best_nme)
    if result.test is not None:
        results["hparam/test_nme_%"] = float(result.test["nme_%"])
    writer.add_hparams(hparams, results, run_name=".")
