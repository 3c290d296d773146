"""Integral regression (DSNT): soft-argmax coordinates under an L1 loss plus a Jensen-Shannon
regulariser toward the Gaussian; decoded with the same (global) soft-argmax it was trained with."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401
from heatnet.codecs import SoftArgmax
from heatnet.losses import IntegralLoss

settings = replace(settings, loss=IntegralLoss, decoder=SoftArgmax(correct_truncation=False))
