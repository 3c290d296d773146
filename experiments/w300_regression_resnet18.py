"""The ResNet18 + FC regression baseline on 300-W, same data, crops and schedule as w300_unet_kl.
Without BlurPool: the 300-W regression study measured it better on validation at equal steps
(10.02 against 16.96 % val NME at 456 steps; docs/300w_regression.md)."""
from experiments.regression_resnet18 import RegressionSettings, build  # noqa: F401
from experiments.w300_unet_kl import settings as heatmap_settings
from heatnet.config import extend
from heatnet.losses import L1

settings = extend(heatmap_settings, RegressionSettings, loss=L1, blurpool=False)
