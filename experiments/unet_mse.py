"""Unet-KL with the classic MSE-to-Gaussian loss instead, decoded with DARK."""
from dataclasses import replace

from experiments.unet_kl import make_codec, make_model, settings
from heatnet.codecs import Dark
from heatnet.config import Method
from heatnet.losses import HeatmapMSE

settings = replace(settings, lr=1e-3)


def build(s, scheme) -> Method:
    codec = replace(make_codec(s), decoder=Dark())
    return Method(make_model(s, scheme, codec), HeatmapMSE(codec))
