"""Unet-KL on the YouTube-Faces 68-point frames (3462 train -> 770 test; shared identities)."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="ytf68", val_split="test", train_limit=0, epochs=20)
