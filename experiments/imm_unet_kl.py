"""Unet-KL on the 58-point IMM faces: people 01-28 train (168 images), 29-32 validation,
33-40 test; so many epochs."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="imm", train_limit=0, epochs=60, workers=0, cache_images=True)
