"""Study: Unet-KL heatmaps on the same 96 px grayscale Kaggle-style crops as kaggle15_cnn.py;
a missing point's heatmap is masked out of the loss."""
from experiments.kaggle15_cnn import settings as cnn_settings
from experiments.unet_kl import build, settings as heatmap_settings  # noqa: F401
from heatnet.config import extend

settings = extend(cnn_settings, heatmap_settings, lr=heatmap_settings.lr)  # unet_kl's method
