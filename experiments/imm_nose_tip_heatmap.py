"""Study: the nose tip as a heatmap, Unet-ResNet18 + KL on the same whole-image grayscale crops as
imm_nose_tip_cnn.py, at 96 px (smp's encoders need a multiple of 32)."""
from dataclasses import replace

from experiments.imm_nose_tip_cnn import settings as cnn_settings
from experiments.unet_kl import build, settings as heatmap_settings  # noqa: F401

settings = replace(cnn_settings, input_size=96, lr=heatmap_settings.lr, loss=heatmap_settings.loss,
                   decoder=heatmap_settings.decoder, sigma=heatmap_settings.sigma)
