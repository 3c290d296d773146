"""Study: the YouTube-Faces tutorial CNN (5 conv with growing dropout, ELU, 2 FC with dropout 0.5)
on 224 x 224 grayscale crops, SmoothL1 loss; tested as in the notebook on Haar-cascade crops
(`tools/evaluate.py RUN/best.pt --split test --detector haar`). docs/ytf68_cnn.md compares it
with ytf68_unet_kl.py."""
from experiments.ytf68_unet_kl import settings as heatmap_settings
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import extend
from heatnet.losses import SmoothL1
from heatnet.method import Method, RegressionSettings
from heatnet.models import youtube_faces_cnn

settings = extend(heatmap_settings, RegressionSettings, input_size=224, channels=1, loss=SmoothL1, lr=1e-3)


def build(s: RegressionSettings, scheme) -> Method:
    return Method(youtube_faces_cnn(scheme.num_points, s.channels, s.input_size),
                  s.loss(NormalisedCoordinates(s.input_size)))
