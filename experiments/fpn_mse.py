"""FPN-ResNet18 with the MSE heatmap loss, decoded with DARK."""
from dataclasses import replace

import segmentation_models_pytorch as smp

from experiments.unet_mse import settings  # noqa: F401
from experiments.unet_kl import make_codec, make_model
from heatnet.codecs import Dark
from heatnet.config import Method
from heatnet.losses import HeatmapMSE


def build(s, scheme) -> Method:
    codec = replace(make_codec(s), decoder=Dark())
    return Method(make_model(s, scheme, codec, smp.FPN), HeatmapMSE(codec))
