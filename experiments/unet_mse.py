"""Unet-KL with the classic MSE-to-Gaussian loss instead, decoded with DARK."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401
from heatnet.codecs import Dark
from heatnet.losses import HeatmapMSE

settings = replace(settings, loss=HeatmapMSE, decoder=Dark(), lr=1e-3)
