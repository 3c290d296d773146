import numpy as np
import pytest

from heatnet.datasets import load_split
from heatnet.schemes import IBUG68, IMM58, SCHEMES, LandmarkScheme
from heatnet.shape_model import align_to, procrustes_mean


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=lambda s: s.name)
def test_flip_map_is_an_involution_and_regions_cover(scheme):
    flip = np.array(scheme.flip_map)
    np.testing.assert_array_equal(flip[flip], np.arange(scheme.num_points))
    assert sum(len(r) for r in scheme.regions.values()) == scheme.num_points
    assert len(set(scheme.point_names)) == scheme.num_points


def test_bad_scheme_is_rejected():
    with pytest.raises(ValueError, match="involutive"):
        LandmarkScheme("bad", ("a", "b", "c"), (1, 2, 0), None, {"all": (0, 1, 2)})


def _mirror_error(mean: np.ndarray, flip_map, norm_pair) -> float:
    """Max distance between the mirrored, re-indexed mean shape (aligned by a similarity, which
    cannot undo a wrong re-indexing) and the mean shape, in units of the inter-ocular distance."""
    mirrored = mean[list(flip_map)] * np.array([-1.0, 1.0])
    aligned = align_to(mirrored, mean)
    iod = np.linalg.norm(mean[norm_pair[0]] - mean[norm_pair[1]])
    return float(np.linalg.norm(aligned - mean, axis=1).max() / iod)


@pytest.mark.parametrize("name,scheme", [("300w", IBUG68), ("imm", IMM58)])
def test_flip_on_real_mean_shape(data_root, name, scheme):
    split = "train" if name == "300w" else "all"
    shapes = np.stack([r.points for r in load_split(name, split, data_root).records]).astype(np.float64)
    mean, _ = procrustes_mean(shapes)
    assert _mirror_error(mean, scheme.flip_map, scheme.norm_pair) < 0.01 * 3  # see below
    # The flip map matters: without re-indexing the error is the face width, not a few percent.
    assert _mirror_error(mean, range(scheme.num_points), scheme.norm_pair) > 0.5


def test_flip_on_real_300w_mean_shape_within_one_percent(data_root):
    shapes = np.stack([r.points for r in load_split("300w", "train", data_root).records]).astype(np.float64)
    mean, _ = procrustes_mean(shapes)
    mirrored = mean[list(IBUG68.flip_map)] * np.array([-1.0, 1.0])
    iod = np.linalg.norm(mean[36] - mean[45])
    error = np.linalg.norm(align_to(mirrored, mean) - mean, axis=1).mean() / iod
    assert error < 0.01
    np.testing.assert_allclose(mirrored[list(IBUG68.flip_map)] * np.array([-1.0, 1.0]), mean)  # twice = identity
