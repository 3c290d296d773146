"""Training augmentation.

Geometry (rotation, scale, shift, mirror) is sampled here and folded into the crop affine
(heatnet.geometry), so an image is resampled once, rotated corners show real image content
instead of padding, and predictions map back exactly. Appearance (colour, blur, noise,
occluding patches) is albumentations. A mirror re-indexes points by the scheme's flip map.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import

import albumentations as A
import numpy as np

from heatnet.crop import CropJitter


@dataclass
class Augmentation:
    rotation_deg: float = 30.0  # uniform in +-rotation_deg
    scale_range: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08  # uniform in +-shift of the box side, per axis
    mirror_prob: float = 0.5
    color_prob: float = 0.8
    blur_prob: float = 0.2
    noise_prob: float = 0.3
    occlusion_prob: float = 0.3
    gray_prob: float = 0.1

    def __post_init__(self) -> None:
        # Appearance strengths are tuning, outside mutation testing's scope (augment's geometry;
        # docs/mutation.md); tests/test_samples.py checks that each change alters the crop.
        # pragma: no mutate block
        self.appearance = A.Compose([
            A.ColorJitter(brightness=0.35, contrast=0.35, saturation=0.35, hue=(-0.04, 0.04), p=self.color_prob),
            A.ToGray(p=self.gray_prob),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 7))],
                    p=self.blur_prob),
            A.GaussNoise(std_range=(0.01, 0.06), p=self.noise_prob),
            A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3),
                            fill="random_uniform", p=self.occlusion_prob),
        ])

    def sample_jitter(self, rng: np.random.Generator) -> CropJitter:
        return CropJitter(
            angle_deg=float(rng.uniform(-self.rotation_deg, self.rotation_deg)),
            scale=float(rng.uniform(*self.scale_range)),
            shift=(float(rng.uniform(-self.shift, self.shift)), float(rng.uniform(-self.shift, self.shift))),
            mirror=bool(rng.random() < self.mirror_prob),
        )

    def appearance_transform(self, image: np.ndarray, seed: int) -> np.ndarray:
        """Colour, blur, noise and occluders on an H x W x C uint8 crop; same seed, same result."""
        self.appearance.set_random_seed(seed)
        return self.appearance(image=image)["image"]
