"""Direct-regression baseline with the heatmap models' encoder: ResNet18 + global pool + FC,
anti-aliased with BlurPool, L1 loss on normalised coordinates."""
from dataclasses import replace

from experiments.unet_kl import settings
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import Method
from heatnet.losses import L1
from heatnet.models import EncoderRegressor

settings = replace(settings, loss=L1)  # same data, size and budget as unet_kl


def build(s, scheme) -> Method:
    model = EncoderRegressor(scheme.num_points, s.encoder, in_channels=s.channels, blurpool=True)
    return Method(model, s.loss(NormalisedCoordinates(s.input_size)))
