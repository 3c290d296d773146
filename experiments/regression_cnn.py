"""The Kaggle notebook's small CNN (conv-conv-pool blocks, batch norm, LeakyReLU) on 96 px
grayscale crops, Wing loss: the seed baseline."""
from experiments.unet_kl import settings
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import extend
from heatnet.losses import Wing
from heatnet.method import Method, RegressionSettings
from heatnet.models import kaggle_cnn

settings = extend(settings, RegressionSettings, input_size=96, channels=1, lr=1e-3, loss=Wing)


def build(s: RegressionSettings, scheme) -> Method:
    return Method(kaggle_cnn(scheme.num_points, s.channels, s.input_size), s.loss(NormalisedCoordinates(s.input_size)))
