"""The ResNet18 + FC regression baseline on 300-W, same data and schedule as w300_unet_kl."""
from dataclasses import replace

from experiments.regression_resnet18 import build  # noqa: F401
from experiments.w300_unet_kl import settings
from heatnet.losses import L1

settings = replace(settings, loss=L1)
