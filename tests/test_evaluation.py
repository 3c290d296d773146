"""Evaluation: predictions mapped back to original pixels, flip test, decoders on one forward pass."""
import torch

from heatnet.augment import Augmentation
from heatnet.samples import LandmarkDataset
from heatnet.schemes import IBUG68
from heatnet.synthetic import SyntheticFaces


def test_flip_test_maps_mirrored_predictions_back():
    from heatnet.evaluation import mirror_predictions

    ds = LandmarkDataset(SyntheticFaces(2), size=64)
    mirrored = LandmarkDataset(SyntheticFaces(2), size=64, augmentation=Augmentation(
        rotation_deg=0, scale_range=(1, 1), shift=0, mirror_prob=1, color_prob=0, blur_prob=0, noise_prob=0,
        occlusion_prob=0, gray_prob=0))
    plain, flipped = ds[0], mirrored[0]
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))  # the mirrored crop is the flipped input
    back = mirror_predictions(flipped["points"][None], 64, IBUG68)[0]  # its labels, mapped back
    torch.testing.assert_close(back, plain["points"], atol=1e-4, rtol=0)
