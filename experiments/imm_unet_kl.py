"""Unet-KL on the 58-point IMM faces (people 01-32 -> 33-40): 192 training images, so many epochs."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="imm", train_limit=0, epochs=60, workers=0)
