"""The ResNet18 + FC regression baseline on YouTube-Faces, same data and schedule as ytf68_unet_kl."""
from experiments.regression_resnet18 import RegressionSettings, build  # noqa: F401
from experiments.ytf68_unet_kl import settings as heatmap_settings
from heatnet.config import extend
from heatnet.losses import L1

settings = extend(heatmap_settings, RegressionSettings, loss=L1)
