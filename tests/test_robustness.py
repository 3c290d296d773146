import numpy as np
import pytest
import torch

from heatnet.codecs import NormalisedCoordinates
from heatnet.config import Settings
from heatnet.method import Method
from heatnet.samples import FirstN, LandmarkDataset
from heatnet.losses import L1
from heatnet.robustness import shift_robustness
from heatnet.synthetic import SyntheticFaces


class CropCentre(torch.nn.Module):
    """Always the middle of the crop: the least shift-equivariant model there is."""

    def __init__(self, num_points: int):
        super().__init__()
        self.num_points = num_points

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(images), self.num_points, 2)


def test_a_model_stuck_to_the_crop_drifts_by_exactly_the_shift():
    dataset = LandmarkDataset(FirstN(SyntheticFaces(8), 6), size=64)
    method = Method(CropCentre(68), L1(NormalisedCoordinates(64)))
    rows = shift_robustness(method, dataset, Settings(workers=0, batch_size=4), torch.device("cpu"), shifts=(1, 3))
    assert [row["shift_px"] for row in rows] == [0, 1, 3] and rows[0]["drift_%"] == 0
    # d input px are d / k original px (k: the crop's scale), the same for every point of an image
    scale = np.array([np.sqrt(abs(np.linalg.det(dataset[i]["affine"][:, :2].numpy()))) for i in range(6)])
    normaliser = np.array([float(dataset[i]["normaliser"]) for i in range(6)])
    for row, d in zip(rows[1:], (1, 3)):
        assert row["drift_%"] == pytest.approx(100 * np.mean(d / scale / normaliser), rel=1e-4)


def test_shift_robustness_refuses_augmented_crops():
    from heatnet.augment import Augmentation

    dataset = LandmarkDataset(SyntheticFaces(2), size=64, augmentation=Augmentation())
    with pytest.raises(ValueError, match="without augmentation"):
        shift_robustness(Method(CropCentre(68), L1(NormalisedCoordinates(64))), dataset, Settings(workers=0),
                         torch.device("cpu"))
