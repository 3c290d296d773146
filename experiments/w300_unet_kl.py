"""Unet-KL on 300-W (afw + helen + lfpw train, 2012 images -> lfpw test, 224)."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="300w", val_split="test", train_limit=0, epochs=40, lr=2e-3)
