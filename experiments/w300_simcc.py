"""SimCC on the 300-W recipe (experiments/w300_unet_js.py): the same Unet-ResNet18 ends in K maps at
stride 4, each flattened and classified into x and y bins at 2 bins per input pixel (Li et al.
2022, as in RTMPose), labels 1-D Gaussians as wide as the 2-D recipe's (sigma 1 heatmap pixel =
4 input pixels = 8 bins), KL loss. A row of the coordinate-heads table (docs/coordinate_heads.md)."""
from dataclasses import replace

from experiments.unet_kl import build  # noqa: F401
from experiments.w300_unet_js import settings
from heatnet.losses import AxisKL

settings = replace(settings, loss=AxisKL, split_ratio=2.0)
