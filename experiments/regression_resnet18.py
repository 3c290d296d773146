"""Direct-regression baseline with the heatmap models' encoder: ResNet18 + global pool + FC,
anti-aliased with BlurPool, L1 loss on normalised coordinates. `--encoder=resnet50`,
`--blurpool=false` and `--dropout=0.3` reach the model (the 300-W regression study sweeps them);
`--loss=RLE` trains residual log-likelihood estimation (a scale per point and the flow)."""
from dataclasses import dataclass

from experiments.unet_kl import settings as heatmap_settings
from heatnet.codecs import CoordinatesWithScale, NormalisedCoordinates
from heatnet.config import Range, extend, setting
from heatnet.losses import RLE
from heatnet.method import Method, RegressionSettings
from heatnet.models import EncoderRegressor, RleRegressor


@dataclass
class ResNetRegressionSettings(RegressionSettings):
    encoder: str = setting("resnet18", "any smp encoder name")
    blurpool: bool = setting(True, "anti-aliased downsampling (Zhang 2019) in every stride-2 layer of the encoder")
    dropout: float = setting(0.0, "before the final linear layer", Range(0, 1, open_high=True))


settings = extend(heatmap_settings, ResNetRegressionSettings)  # same data, size and budget as unet_kl


def build(s: ResNetRegressionSettings, scheme) -> Method:
    if s.loss is RLE:  # the model holds the flow that the loss trains
        model = RleRegressor(scheme.num_points, s.encoder, in_channels=s.channels, blurpool=s.blurpool,
                             dropout=s.dropout)
        return Method(model, RLE(CoordinatesWithScale(s.input_size), model.flow))
    model = EncoderRegressor(scheme.num_points, s.encoder, in_channels=s.channels, blurpool=s.blurpool,
                             dropout=s.dropout)
    return Method(model, s.loss(NormalisedCoordinates(s.input_size)))
