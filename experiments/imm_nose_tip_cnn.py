"""Study: the first seed, a 3-conv + 2-FC net finding the nose tip in the whole IMM photo
(640 x 480 -> 80 x 60 grayscale in [-0.5, 0.5], letterboxed into an 80 x 80 crop), L1 loss.
People 01-28 train, 29-32 validation, 33-40 test; NME by the inter-ocular distance of the
58-point face. docs/imm_nose_tip.md compares it with imm_nose_tip_heatmap.py and sweeps its
learning rate and batch size."""
from heatnet.codecs import NormalisedCoordinates
from heatnet.crop import CropBox
from heatnet.losses import L1
from heatnet.method import Method, RegressionSettings
from heatnet.models import nose_tip_cnn

settings = RegressionSettings(dataset="imm_nose", box=CropBox.IMAGE, box_scale=1.0, input_size=80, channels=1,
                              batch_size=16, epochs=60, lr=1e-3, warmup_epochs=2, workers=0, cache_images=True, loss=L1,
                              rotation_deg=10.0, scale_jitter=0.1, shift=0.05, occlusion_prob=0.0)


def build(s: RegressionSettings, scheme) -> Method:
    return Method(nose_tip_cnn(scheme.num_points, s.channels, s.input_size),
                  s.loss(NormalisedCoordinates(s.input_size)))
