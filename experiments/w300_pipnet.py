"""PIPNet's head with its neighbour regression (Jin et al. 2021) on the 300-W recipe
(experiments/w300_offsets.py): each point's cell also regresses the x / y offsets of its 10
nearest points in the mean shape (PIPNet's 300-W count), so the Unet ends in 23 maps per point,
and each point is decoded as the mean of its own estimate and its neighbours' estimates of it.
A row of the coordinate-heads table (docs/coordinate_heads.md)."""
from dataclasses import replace

from experiments.unet_kl import build  # noqa: F401
from experiments.w300_offsets import settings

settings = replace(settings, neighbours=10)
