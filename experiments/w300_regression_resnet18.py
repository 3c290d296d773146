"""The ResNet18 + FC regression baseline on 300-W, same data, augmentation and schedule as
w300_unet_js, at its own input size and learning rate (docs/recipes.md, "The regression
baseline"). Without BlurPool: the 300-W regression study measured it better on validation at
equal steps (10.02 against 16.96 % val NME at 456 steps; docs/300w_regression.md).
128 px crops, not the heatmap recipe's 160: val 9.92 ± 0.87 against 15.94 ± 0.97 % (3 seeds,
456 steps). Learning rate 5e-4, not the heatmap recipe's 2e-3, and L1 over Wing (3 seeds, 456
steps, val NME %): L1 at 2.5e-4 / 5e-4 / 1e-3 / 2e-3 / 4e-3: 9.69 / 8.25 / 8.75 / 9.92 / 16.99;
Wing at 2.5e-4 / 5e-4 / 1e-3: 10.96 / 8.82 / 15.63 (one seed)."""
from experiments.regression_resnet18 import ResNetRegressionSettings, build  # noqa: F401
from experiments.w300_unet_js import settings as heatmap_settings
from heatnet.config import extend

settings = extend(heatmap_settings, ResNetRegressionSettings, blurpool=False, input_size=128, lr=5e-4)
