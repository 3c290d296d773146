"""The Kaggle notebook's small CNN (conv-conv-pool blocks, batch norm, LeakyReLU) on 96 px
grayscale crops, Wing loss: the seed baseline."""
from dataclasses import replace

from experiments.unet_kl import settings
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import Method
from heatnet.losses import Wing
from heatnet.models import kaggle_cnn

settings = replace(settings, input_size=96, channels=1, lr=1e-3, loss=Wing)


def build(s, scheme) -> Method:
    return Method(kaggle_cnn(scheme.num_points, s.channels, s.input_size), s.loss(NormalisedCoordinates(s.input_size)))
