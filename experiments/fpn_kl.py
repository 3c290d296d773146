"""FPN-ResNet18 (decoder at stride 4, no upsampling needed) with the KL loss."""
import segmentation_models_pytorch as smp

from experiments.unet_kl import make_codec, make_model, settings  # noqa: F401  (settings re-exported)
from heatnet.config import Method
from heatnet.losses import HeatmapKL


def build(s, scheme) -> Method:
    codec = make_codec(s)
    return Method(make_model(s, scheme, codec, smp.FPN), HeatmapKL(codec))
