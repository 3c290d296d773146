"""The first seed: 3-conv + 2-FC net finding the nose tip on IMM faces (people 01-28 train,
29-32 validation, 33-40 test)."""
from heatnet.codecs import NormalisedCoordinates
from heatnet.config import Method, Settings
from heatnet.losses import L1
from heatnet.models import nose_tip_cnn

settings = Settings(dataset="imm_nose", input_size=64, channels=1, batch_size=16, epochs=60, lr=1e-3,
                    box_scale=1.1, rotation_deg=15.0, workers=0, loss=L1)


def build(s, scheme) -> Method:
    return Method(nose_tip_cnn(scheme.num_points, s.channels, s.input_size), s.loss(NormalisedCoordinates(s.input_size)))
