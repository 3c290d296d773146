"""Unet-KL on 300-W: afw + helen + lfpw training images minus a fixed tenth for validation
(1839 train / 173 val) -> lfpw test (224), read once after training."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="300w", train_limit=0, epochs=40, lr=2e-3)
