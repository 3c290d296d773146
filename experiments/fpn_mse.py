"""FPN-ResNet18 with the MSE heatmap loss, decoded with DARK."""
from dataclasses import replace

import segmentation_models_pytorch as smp

from experiments.unet_mse import build, settings  # noqa: F401

settings = replace(settings, architecture=smp.FPN)
