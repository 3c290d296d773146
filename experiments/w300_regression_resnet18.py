"""The ResNet18 + FC regression baseline on 300-W, same data and schedule as w300_unet_kl."""
from experiments.regression_resnet18 import RegressionSettings, build  # noqa: F401
from experiments.w300_unet_kl import settings as heatmap_settings
from heatnet.config import extend
from heatnet.losses import L1

settings = extend(heatmap_settings, RegressionSettings, loss=L1)
