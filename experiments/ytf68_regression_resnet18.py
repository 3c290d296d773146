"""The ResNet18 + FC regression baseline on YouTube-Faces, same data and schedule as ytf68_unet_kl."""
from experiments.regression_resnet18 import build  # noqa: F401
from experiments.ytf68_unet_kl import settings  # noqa: F401
