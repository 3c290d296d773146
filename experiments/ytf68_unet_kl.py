"""Unet-KL on the YouTube-Faces 68-point frames: training frames minus a tenth of the people for
validation (3081 train / 381 val) -> the 770 test frames (which share identities with training), read once at the end."""
from dataclasses import replace

from experiments.unet_kl import build, settings  # noqa: F401

settings = replace(settings, dataset="ytf68", train_limit=0, epochs=20)
