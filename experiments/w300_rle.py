"""Residual log-likelihood estimation (Li et al. 2021) on the 300-W regression baseline
(experiments/w300_regression_resnet18.py): the same ResNet-18 + FC also predicts a scale per
point and axis, and a RealNVP flow learns the density of the scaled residual. A row of the
coordinate-heads table (docs/coordinate_heads.md)."""
from dataclasses import replace

from experiments.regression_resnet18 import build  # noqa: F401
from experiments.w300_regression_resnet18 import settings
from heatnet.losses import RLE

settings = replace(settings, loss=RLE)
