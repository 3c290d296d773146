"""The ResNet18 + FC regression baseline on YouTube-Faces, same data and schedule as ytf68_unet_kl,
at 96 px: its own best input size on ytf68 validation, 3 seeds at 384 steps (docs/recipes.md):
16.76 +- 4.96 % against 18.10 +- 2.59 at 128 px and 21.42 +- 0.36 at 160 px."""
from experiments.regression_resnet18 import RegressionSettings, build  # noqa: F401
from experiments.ytf68_unet_kl import settings as heatmap_settings
from heatnet.config import extend
from heatnet.losses import L1

settings = extend(heatmap_settings, RegressionSettings, loss=L1, input_size=96)
