"""Heatmap plus offsets (PIPNet's head, Jin et al. 2021) on the 300-W recipe
(experiments/w300_unet_js.py): the same Unet-ResNet18 ends in 3 maps per point at stride 4, a
score map trained as the recipe's heatmap (KL to the sigma-1 Gaussian) and x / y offsets within
the point's cell (L1); decoded as the best cell plus its offsets, where the recipe refines by a
windowed soft-argmax. A row of the coordinate-heads table (docs/coordinate_heads.md)."""
from dataclasses import replace

from experiments.unet_kl import build  # noqa: F401
from experiments.w300_unet_js import settings
from heatnet.losses import OffsetLoss

settings = replace(settings, loss=OffsetLoss)
