"""Integral regression (DSNT): soft-argmax coordinates under an L1 loss plus a Jensen-Shannon
regulariser toward the Gaussian; decoded with the same (global) soft-argmax it was trained with."""
from dataclasses import replace

from experiments.unet_kl import make_codec, make_model, settings  # noqa: F401
from heatnet.codecs import SoftArgmax
from heatnet.config import Method
from heatnet.losses import IntegralLoss


def build(s, scheme) -> Method:
    codec = replace(make_codec(s), decoder=SoftArgmax(correct_truncation=False))
    return Method(make_model(s, scheme, codec), IntegralLoss(codec, js_weight=1.0))
