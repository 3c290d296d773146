"""Direct-regression baseline with the heatmap models' encoder: ResNet18 + global pool + FC,
anti-aliased with BlurPool, L1 loss on normalised coordinates."""
from experiments.unet_kl import settings  # noqa: F401  same data, size, budget
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import Method
from heatnet.losses import L1
from heatnet.models import EncoderRegressor


def build(s, scheme) -> Method:
    model = EncoderRegressor(scheme.num_points, "resnet18", in_channels=s.channels, blurpool=True)
    return Method(model, L1(NormalisedCoordinates(s.input_size)))
