"""Study: the nose tip as a heatmap, Unet-ResNet18 + KL on the same whole-image grayscale crops as
imm_nose_tip_cnn.py, at 96 px (smp's encoders need a multiple of 32)."""
from experiments.imm_nose_tip_cnn import settings as cnn_settings
from experiments.unet_kl import build, settings as heatmap_settings  # noqa: F401
from heatnet.config import extend

settings = extend(cnn_settings, heatmap_settings, input_size=96, lr=heatmap_settings.lr)  # unet_kl's method
