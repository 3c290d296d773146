import numpy as np
import pytest
import torch

from heatnet.codecs import (DECODERS, Argmax, Dark, GaussianHeatmap, NormalisedCoordinates, QuarterOffset, SoftArgmax,
                            gaussian_heatmaps, heatmap_argmax, to_heatmap_coords, to_input_coords)


def _points(size: int, batch: int = 16, k: int = 68) -> torch.Tensor:
    """Random non-integer points over [0, size - 1], a quarter of them within 2 px of a border."""
    g = torch.Generator().manual_seed(size)
    p = torch.rand(batch, k, 2, generator=g) * (size - 1)
    near = torch.rand(batch, k // 4, generator=g) * 2
    p[:, : k // 8, 0] = near[:, : k // 8]  # left border
    p[:, k // 8 : k // 4, 1] = size - 1 - near[:, k // 8 :]  # bottom border
    return p


STRIDES = [1, 2, 4]


def _error_hm(codec: GaussianHeatmap, decoder) -> torch.Tensor:
    points = _points(codec.input_size)
    targets, weights = codec.encode(points, torch.ones(points.shape[:2]))
    assert weights.all()
    decoded, scores = codec.decode(targets, decoder)
    assert decoded.shape == points.shape and scores.shape == points.shape[:2]
    return (to_heatmap_coords(decoded, codec.stride) - to_heatmap_coords(points, codec.stride)).abs()


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("decoder", [Dark(), SoftArgmax(window_radius=5), SoftArgmax()], ids=repr)
def test_refined_decoders_recover_points(stride, decoder):
    codec = GaussianHeatmap(64 * stride, stride, sigma=2.0)
    error = _error_hm(codec, decoder)
    assert error.mean() < 0.02  # heatmap pixels (0.08 input px at stride 4)
    assert error.max() < 0.05


@pytest.mark.parametrize("stride", STRIDES)
def test_argmax_and_quarter_offset_quantisation(stride):
    codec = GaussianHeatmap(64 * stride, stride, sigma=2.0)
    # offsets uniform in a pixel: argmax |error| averages 1/4, the quarter offset 1/8 per axis
    assert _error_hm(codec, Argmax()).mean() == pytest.approx(0.25, abs=0.03)
    assert _error_hm(codec, QuarterOffset()).mean() == pytest.approx(0.125, abs=0.03)
    assert _error_hm(codec, Argmax()).max() <= 0.5 + 1e-5


def test_plain_soft_argmax_is_biased_at_borders_and_correction_removes_it():
    codec = GaussianHeatmap(256, 4, sigma=2.0)
    plain = _error_hm(codec, SoftArgmax(window_radius=5, correct_truncation=False))
    assert plain.mean() > 0.1  # what the correction is for
    assert _error_hm(codec, SoftArgmax(window_radius=5)).mean() < 0.02


def test_grid_convention_and_encode_peak():
    assert to_heatmap_coords(torch.tensor(1.5), 4) == 0.0  # input pixels 0..3 -> heatmap pixel 0 centre at 1.5
    assert to_input_coords(to_heatmap_coords(torch.tensor(7.3), 2), 2) == pytest.approx(7.3)
    hm = gaussian_heatmaps(torch.tensor([[[3.0, 5.0]]]), 8, 10, 1.0)
    assert hm.shape == (1, 1, 8, 10) and hm[0, 0, 5, 3] == 1.0
    xy, score = heatmap_argmax(hm)
    assert xy.tolist() == [[[3, 5]]] and score.item() == 1.0


def test_points_off_the_map_get_zero_weight():
    codec = GaussianHeatmap(64, 4, 2.0)
    points = torch.tensor([[[10.0, 10.0], [-5.0, 10.0], [10.0, 70.0]]])
    _, weights = codec.encode(points, torch.tensor([[1.0, 1.0, 1.0]]))
    assert weights.tolist() == [[1.0, 0.0, 0.0]]
    _, weights = codec.encode(points, torch.tensor([[0.0, 1.0, 1.0]]))
    assert weights[0, 0] == 0


def test_decoders_are_batched_and_device_agnostic():
    codec = GaussianHeatmap(64, 2, 1.5)
    heatmaps = torch.rand(3, 5, 32, 32)
    for decoder in DECODERS.values():
        points, scores = codec.decode(heatmaps, decoder)
        single, _ = codec.decode(heatmaps[1:2], decoder)
        torch.testing.assert_close(points[1:2], single)


def test_normalised_coordinates_round_trip():
    codec = NormalisedCoordinates(128)
    points = _points(128)
    targets, _ = codec.encode(points, torch.ones(points.shape[:2]))
    assert targets.abs().max() <= 1
    torch.testing.assert_close(codec.decode(targets)[0], points)


def _gaussian_map(h: int, w: int, mean: tuple[float, float], cov: np.ndarray) -> torch.Tensor:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.stack([xs - mean[0], ys - mean[1]], axis=-1)
    quad = np.einsum("...i,ij,...j->...", d, np.linalg.inv(cov), d)
    return torch.from_numpy(np.exp(-0.5 * quad))[None, None]  # (1, 1, H, W) float64


@pytest.mark.parametrize("blur,mean", [(False, (9.3, 7.6)), (False, (14.8, 1.2)), (True, (9.3, 7.6))])
def test_dark_is_exact_for_a_rotated_elongated_gaussian(blur, mean):
    """DARK's Newton step on the log is exact for any Gaussian, whose log is a quadratic: one with
    correlated axes (the cross derivative in play) comes back to 1e-6 px, near a border too;
    blurred by a Gaussian it is still a Gaussian, so blur=True is exact away from the borders
    (near one the blur is cut: the documented bias), unless the blur kernel is wrong (lopsided,
    off centre)."""
    a = np.radians(30)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    cov = turn @ np.diag([2.2 ** 2, 1.1 ** 2]) @ turn.T
    heatmaps = _gaussian_map(16, 20, mean, cov)
    xy, _ = Dark(blur=blur)(heatmaps, sigma=1.5)
    tolerance = 1e-6 if not blur else 2e-3  # the blur kernel is cut at 3 sigma
    np.testing.assert_allclose(xy[0, 0].numpy(), mean, atol=tolerance)


def test_the_blur_kernel_is_a_centred_gaussian_of_the_asked_sigma():
    from heatnet.codecs import _gaussian_kernel

    for sigma in (0.75, 1.0, 2.0):
        kernel = _gaussian_kernel(sigma, "cpu", torch.float64).numpy()
        radius = len(kernel) // 2
        taps = np.arange(-radius, radius + 1)
        assert len(kernel) % 2 == 1 and 3 * sigma <= radius + 0.5 <= 3 * sigma + 1  # cut at 3 sigma
        assert kernel.sum() == pytest.approx(1.0) and np.allclose(kernel, kernel[::-1])
        assert (taps * kernel).sum() == pytest.approx(0.0, abs=1e-12)
        assert (taps ** 2 * kernel).sum() == pytest.approx(sigma ** 2, rel=0.05)  # its variance, less the cut tails


def test_quarter_offset_moves_toward_the_higher_neighbour_but_not_off_the_map():
    heatmaps = torch.zeros(1, 4, 6, 8)
    heatmaps[0, 0, 3, 4], heatmaps[0, 0, 3, 5], heatmaps[0, 0, 2, 4] = 1.0, 0.6, 0.3  # right and up are higher
    heatmaps[0, 1, 3, 4], heatmaps[0, 1, 3, 3], heatmaps[0, 1, 4, 4] = 1.0, 0.6, 0.3  # left and down
    heatmaps[0, 2, 0, 0], heatmaps[0, 2, 0, 1], heatmaps[0, 2, 1, 0] = 1.0, 0.5, 0.5  # a corner: stays
    heatmaps[0, 3, 5, 7], heatmaps[0, 3, 5, 6], heatmaps[0, 3, 4, 7] = 1.0, 0.5, 0.5  # the far corner: stays
    xy, _ = QuarterOffset()(heatmaps, sigma=1.0)
    np.testing.assert_allclose(xy[0].numpy(), [[4.25, 2.75], [3.75, 3.25], [0.0, 0.0], [7.0, 5.0]])
    assert xy.dtype == heatmaps.dtype


def test_dark_keeps_the_argmax_where_the_log_is_no_maximum_and_limits_its_step():
    """Where the log's Hessian is not negative definite (here curving up along y) the Newton step
    is meaningless and the argmax stays; a Gaussian whose centre lies off the map (x = -2) is
    followed at most 1.5 px past the integer maximum."""
    log_patch = np.array([[-0.05, -0.1, -3.0],   # rows y = 3, 4, 5; columns x = 5, 6, 7
                          [-1.0, 0.0, -0.5],      # along x alone a maximum (hxx = -1.5)
                          [-3.0, -0.1, -0.05]])   # but the cross term makes the Hessian indefinite
    saddle = np.full((12, 14), 1e-6)
    saddle[3:6, 5:8] = np.exp(log_patch)
    xy, _ = Dark()(torch.from_numpy(saddle)[None, None], sigma=1.5)
    np.testing.assert_allclose(xy[0, 0].numpy(), [6.0, 4.0])  # the argmax
    off_map = _gaussian_map(12, 14, (-2.0, 5.4), np.diag([1.5 ** 2, 1.5 ** 2]))
    xy, _ = Dark()(off_map, sigma=1.5)
    np.testing.assert_allclose(xy[0, 0].numpy(), [-1.5, 5.4], atol=1e-6)


def test_gaussian_targets_are_the_formula_at_any_sigma_on_a_non_square_map():
    """Every pixel of the target against exp(-d^2 / 2 sigma^2) computed pixel by pixel (sigma 1.5 and
    3: a slip that is exact only at sigma 2 fails)."""
    centres = torch.tensor([[[3.3, 5.8], [0.2, 1.1]]], dtype=torch.float64)
    for sigma in (1.5, 3.0):
        maps = gaussian_heatmaps(centres, 7, 9, sigma)
        assert maps.shape == (1, 2, 7, 9) and maps.dtype == torch.float64
        for k, (cx, cy) in enumerate(centres[0].tolist()):
            expected = [[np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2)) for x in range(9)] for y in range(7)]
            np.testing.assert_allclose(maps[0, k].numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_every_decoder_answers_in_the_heatmaps_dtype(dtype):
    heatmaps = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0)).to(dtype)
    for decoder in DECODERS.values():
        xy, _ = decoder(heatmaps, sigma=1.5)
        assert xy.dtype == dtype, decoder


def test_quarter_offset_steps_one_pixel_inside_each_border():
    """Peaks one pixel in from each border still take their quarter step (and a peak on the top
    row still steps along x): the border rule stops only the border rows and columns."""
    heatmaps = torch.zeros(1, 3, 6, 8)
    heatmaps[0, 0, 1, 1], heatmaps[0, 0, 1, 0], heatmaps[0, 0, 0, 1] = 1.0, 0.6, 0.6  # (1, 1): left and up
    heatmaps[0, 1, 4, 6], heatmaps[0, 1, 4, 7], heatmaps[0, 1, 5, 6] = 1.0, 0.6, 0.6  # (6, 4): right and down
    heatmaps[0, 2, 0, 3], heatmaps[0, 2, 0, 4] = 1.0, 0.6  # the top row, x = 3: right
    xy, _ = QuarterOffset()(heatmaps, sigma=1.0)
    np.testing.assert_allclose(xy[0].numpy(), [[0.75, 0.75], [6.25, 4.25], [3.25, 0.0]])


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_soft_argmax_is_blind_to_the_heatmaps_scale_and_exact_at_the_top_left(sigma):
    """A soft-argmax is a weighted mean: heatmaps a hundredth as strong give the same points. Its
    truncation correction is exact at any sigma, on points a fraction of a pixel from the top-left
    corner too (the taps at pixel 0 count)."""
    codec = GaussianHeatmap(64, 1, sigma=sigma)
    points = torch.tensor([[[0.2, 0.3], [0.6, 30.4], [40.7, 0.1], [62.8, 62.6], [20.0, 20.0]]], dtype=torch.float64)
    targets, _ = codec.encode(points, torch.ones(1, 5, dtype=torch.float64))
    for decoder in (SoftArgmax(window_radius=5), SoftArgmax()):
        decoded, _ = codec.decode(targets, decoder)
        faint, _ = codec.decode(targets * 0.01, decoder)
        np.testing.assert_allclose(decoded[0].numpy(), points[0].numpy(), atol=2e-3)
        np.testing.assert_allclose(faint[0].numpy(), decoded[0].numpy(), atol=1e-4)  # float32 decoding


def test_the_map_spans_the_input_from_edge_to_edge_for_every_codec():
    """A point counts while it lies on the input, pixel edges included: [-0.5, size - 0.5] on both
    axes, in every codec that draws maps. Just off the edge, or off along one axis only, it weighs
    exactly 0; an invisible point stays 0; the offset head's cells stay on the map for any point."""
    from heatnet.codecs import AxisHeatmaps, HeatmapOffsets

    size = 32
    on = [(-0.5, 10.0), (size - 0.5, 10.0), (10.0, -0.5), (10.0, size - 0.5), (10.0, 10.0)]
    off = [(-0.501, 10.0), (size - 0.499, 10.0), (10.0, -0.501), (10.0, size - 0.499), (-50.0, 90.0)]
    points = torch.tensor([on + off + [(12.0, 12.0)]], dtype=torch.float64)  # (1, 11, 2)
    visibility = torch.ones(1, 11, dtype=torch.float64)
    visibility[0, -1] = 0
    for codec in (GaussianHeatmap(size, 4, 1.0), AxisHeatmaps(size, 2.0, 2.0), HeatmapOffsets(size, 4, 1.0)):
        targets, weights = codec.encode(points, visibility)
        assert weights.tolist() == [[1.0] * 5 + [0.0] * 6], codec
    (_, cells, _), _ = HeatmapOffsets(size, 4, 1.0).encode(points, visibility)
    assert cells.min() >= 0 and cells.max() <= size // 4 - 1
    assert cells[0, 1].tolist() == [7, 2] and cells[0, 9].tolist() == [0, 7]


@pytest.mark.parametrize("per_point", [1, 2])
def test_offsets_are_read_at_their_own_cell_on_a_non_square_map(per_point):
    """Point k's M offset maps are channels k M .. k M + M - 1, each read at point k's cell."""
    from heatnet.codecs import offsets_at

    x_maps = torch.arange(2 * 3 * per_point * 5 * 7, dtype=torch.float64).reshape(2, 3 * per_point, 5, 7)
    y_maps = -x_maps
    cells = torch.tensor([[[6, 0], [2, 4], [0, 3]], [[3, 1], [6, 4], [1, 2]]])  # (x, y)
    read = offsets_at(x_maps, y_maps, cells)
    assert read.shape == (2, 3, per_point, 2)
    for b in range(2):
        for k in range(3):
            x, y = cells[b, k].tolist()
            channels = range(k * per_point, (k + 1) * per_point)
            assert read[b, k].tolist() == [[x_maps[b, c, y, x].item(), y_maps[b, c, y, x].item()] for c in channels]


def test_normalised_coordinates_score_every_point():
    codec = NormalisedCoordinates(64)
    points, scores = codec.decode(torch.zeros(3, 5, 2))
    assert scores.shape == (3, 5) and scores.eq(1).all()
