"""The ResNet18 + FC regression baseline on YouTube-Faces, same data and schedule as ytf68_unet_kl,
at its own best input size and learning rate on ytf68 validation, 3 seeds at 384 steps
(docs/recipes.md): 96 px (16.76 +- 4.96 % against 18.10 +- 2.59 at 128 px and 21.42 +- 0.36 at
160 px, all at lr 2e-3), then lr 1e-3 (10.02 +- 0.64 % against 10.31 +- 0.49 at 5e-4)."""
from experiments.regression_resnet18 import ResNetRegressionSettings, build  # noqa: F401
from experiments.ytf68_unet_kl import settings as heatmap_settings
from heatnet.config import extend

settings = extend(heatmap_settings, ResNetRegressionSettings, input_size=96, lr=1e-3)
