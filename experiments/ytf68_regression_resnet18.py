"""The ResNet18 + FC regression baseline on YouTube-Faces, same data and schedule as ytf68_unet_kl."""
from dataclasses import replace

from experiments.regression_resnet18 import build  # noqa: F401
from experiments.ytf68_unet_kl import settings
from heatnet.losses import L1

settings = replace(settings, loss=L1)
