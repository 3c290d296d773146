"""Study: the IMM 58-point CNN (5 conv + FC, 96 px grayscale, L1) with the notebook's augmentation:
colour jitter, rotation up to 15 degrees, mirror with re-indexing, 5 % shift. `--first_kernel`
sets the first layer's kernel (docs/imm_kernel_sizes.md sweeps 3 / 5 / 7 / 9)."""
from dataclasses import dataclass

from heatnet.codecs import NormalisedCoordinates
from heatnet.config import OneOf, setting
from heatnet.losses import L1
from heatnet.method import Method, RegressionSettings
from heatnet.models import face_points_cnn


@dataclass
class KernelSettings(RegressionSettings):
    first_kernel: int = setting(5, "side of the first convolution's kernels", OneOf((1, 3, 5, 7, 9, 11)))


settings = KernelSettings(dataset="imm", input_size=96, channels=1, batch_size=16, epochs=80, lr=1e-3,
                          warmup_epochs=2, workers=0, cache_images=True, loss=L1, rotation_deg=15.0, shift=0.05, scale_jitter=0.0,
                          mirror_prob=0.5, color_prob=0.8, gray_prob=0.0, blur_prob=0.0, noise_prob=0.0,
                          occlusion_prob=0.0)


def build(s: KernelSettings, scheme) -> Method:
    return Method(face_points_cnn(scheme.num_points, s.channels, s.input_size, s.first_kernel),
                  s.loss(NormalisedCoordinates(s.input_size)))
