"""The ResNet18 + FC regression baseline on 300-W, same data and schedule as w300_unet_kl."""
from experiments.regression_resnet18 import build  # noqa: F401
from experiments.w300_unet_kl import settings  # noqa: F401
