"""FPN-ResNet18 (decoder at stride 4, no upsampling needed) with the KL loss."""
from dataclasses import replace

import segmentation_models_pytorch as smp

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, architecture=smp.FPN)
