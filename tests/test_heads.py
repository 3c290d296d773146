"""The coordinate heads beside 2-D heatmaps: SimCC's 1-D heatmaps (AxisHeatmaps, AxisKL), PIPNet's
heatmap plus offsets (HeatmapOffsets, OffsetLoss), and RLE (CoordinatesWithScale, RLE, RealNVP):
exact encode -> decode, losses against values worked out by hand, a flow density that
integrates to one, and one epoch of each head's experiment on synthetic faces."""
import math
from pathlib import Path

import pytest
import torch

from conftest import settings_for
from heatnet.codecs import AxisHeatmaps, CoordinatesWithScale, HeatmapOffsets
from heatnet.losses import RLE, AxisKL, OffsetLoss
from heatnet.models import AxisModel, ModelConfigError, RealNVP

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
HEADS = ["w300_unet_js", "w300_simcc", "w300_offsets", "w300_pipnet", "w300_integral", "w300_regression_resnet18",
         "w300_rle"]


def _points(size: int = 160, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel points all over a `size` crop, edges included, and their visibility."""
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(4, 68, 2, generator=g, dtype=torch.float64) * (size - 1.2) + 0.1
    points[0, 0] = torch.tensor([0.3, size - 1.3])  # near two borders
    return points, torch.ones(4, 68, dtype=torch.float64)


def _axis_probabilities(codec: AxisHeatmaps, points: torch.Tensor) -> torch.Tensor:
    """The normalised labels as a model's per-axis probabilities would be: (B, K, 2N)."""
    targets, _ = codec.encode(points, torch.ones(points.shape[:-1], dtype=points.dtype))
    return (targets / targets.sum(-1, keepdim=True)).flatten(-2)


@pytest.mark.parametrize("split_ratio,sigma", [(2.0, 8.0), (1.0, 2.0), (3.0, 5.0)])
def test_axis_heatmaps_decode_their_labels_to_the_points(split_ratio, sigma):
    codec = AxisHeatmaps(160, split_ratio, sigma)
    points, _ = _points()
    decoded, scores = codec.decode(_axis_probabilities(codec, points))
    assert (decoded - points).abs().max() < 1e-3  # input pixels, float32 decoding
    assert scores.min() > 0.95  # an exact label scores 1 when its peak falls on a bin


def test_axis_bins_sit_where_the_docstring_says():
    """Bin i covers input pixel (i + 0.5) / split_ratio - 0.5: a point at pixel 10 with 2 bins per
    pixel peaks between bins 20 and 21, a point at 10.25 on bin 21."""
    codec = AxisHeatmaps(32, 2.0, 1.0)
    targets, _ = codec.encode(torch.tensor([[[10.0, 10.25]]]), torch.ones(1, 1))
    x, y = targets[0, 0]
    assert x[20] == pytest.approx(x[21]) and x.argmax() in (20, 21)
    assert y.argmax() == 21 and y[21] == pytest.approx(1.0)


def test_axis_kl_is_zero_on_the_label_and_sees_half_a_pixel():
    codec = AxisHeatmaps(64, 2.0, 4.0)
    loss = AxisKL(codec)
    points, visibility = _points(64)
    points = points.clamp(8, 55)  # far from the borders: labels not truncated

    def logits(at):
        return _axis_probabilities(codec, at).clamp_min(1e-30).log()

    assert loss(logits(points), points, visibility).item() == pytest.approx(0.0, abs=1e-6)  # float32
    # half a pixel in x is one bin: KL of two Gaussians of std s, means d apart, is d^2 / (2 s^2)
    shifted = points + torch.tensor([0.5, 0.0], dtype=torch.float64)
    assert loss(logits(shifted), points, visibility).item() == pytest.approx(1 / 32, rel=1e-3)


def _offset_outputs(score_maps: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) score maps and (B, K, M, 2) offsets per point (M = 1 + N), each spread over the
    map -> (B, K (1 + 2M), H, W) in HeatmapOffsets' channel order."""
    b, k, h, w = score_maps.shape
    def spread(axis: torch.Tensor) -> torch.Tensor:  # (B, K, M) -> (B, K M, H, W), point-major
        return axis.reshape(b, -1)[..., None, None].expand(b, axis[0].numel(), h, w)
    return torch.cat([score_maps, spread(offsets[..., 0]), spread(offsets[..., 1])], dim=1)


def _mean_shape_neighbours(count: int) -> tuple[tuple[int, ...], ...]:
    from heatnet.method import neighbours_in_mean_shape
    return neighbours_in_mean_shape(68, count)


@pytest.mark.parametrize("neighbours", [0, 10])
def test_heatmap_offsets_decode_their_targets_to_the_points(neighbours):
    codec = HeatmapOffsets(160, 4, sigma=1.0, neighbours=_mean_shape_neighbours(neighbours))
    points, visibility = _points()
    (gaussians, cells, offsets), weights = codec.encode(points, visibility)
    assert offsets.shape == (4, 68, 1 + neighbours, 2) and codec.maps_per_point == 3 + 2 * neighbours
    assert weights.eq(1).all() and offsets[..., 0, :].abs().max() <= 0.5 + 1e-9  # the nearest cell
    peak = gaussians.flatten(2).argmax(-1)
    assert peak.eq(cells[..., 1] * 40 + cells[..., 0]).all()  # the Gaussian peaks in the point's cell
    decoded, _ = codec.decode(_offset_outputs(gaussians, offsets))
    assert (decoded - points).abs().max() < 1e-3


def test_neighbours_are_the_nearest_in_the_mean_shape_and_each_point_is_the_mean_of_its_estimates():
    """The eye corners' nearest neighbours are their own eye's points; a decoded point is the mean
    of its own estimate and those of every point naming it: moving one neighbour estimate by 2 cells
    moves only the point it names, by 2 cells x 4 px / (1 + the times that point is named)."""
    from heatnet.shape_model import ShapeModel
    neighbours = _mean_shape_neighbours(3)
    assert set(neighbours[36]) <= {37, 38, 39, 40, 41} and set(neighbours[45]) <= {42, 43, 44, 46, 47}
    mean = ShapeModel.load().mean
    for k, row in enumerate(neighbours):  # nearest first, and no point left out is nearer
        distance = ((mean - mean[k]) ** 2).sum(-1)
        others = [distance[j] for j in range(68) if j != k and j not in row]
        assert k not in row and len(set(row)) == 3 and list(distance[list(row)]) == sorted(distance[list(row)])
        assert distance[row[-1]] <= min(others)
    codec = HeatmapOffsets(160, 4, sigma=1.0, neighbours=neighbours)
    points, visibility = _points()
    (gaussians, _, offsets), _ = codec.encode(points, visibility)
    moved = offsets.clone()
    moved[:, 0, 2, 0] += 2.0  # point 0's estimate of its second neighbour, x
    named = neighbours[0][1]
    times_named = sum(row.count(named) for row in neighbours)
    shift = codec.decode(_offset_outputs(gaussians, moved))[0] - codec.decode(_offset_outputs(gaussians, offsets))[0]
    expected = torch.zeros_like(shift)
    expected[:, named, 0] = 8.0 / (1 + times_named)
    assert (shift - expected).abs().max() < 1e-4
    from heatnet.errors import ConfigError
    from heatnet.method import neighbours_in_mean_shape
    with pytest.raises(ConfigError, match="--neighbours=10: needs a mean shape.*58 points"):
        neighbours_in_mean_shape(58, 10)
    with pytest.raises(ValueError, match="as many neighbours"):
        HeatmapOffsets(160, neighbours=((1, 2), (0,)))


def test_offset_loss_values():
    """Zero on the targets (log of the normalised Gaussian as score logits); the offsets' L1 in
    cell units: a quarter-cell x error adds exactly 0.25, and 0.5 with offset_weight=2."""
    codec = HeatmapOffsets(64, 4, sigma=1.0)
    points, visibility = _points(64)
    (gaussians, _, offsets), _ = codec.encode(points, visibility)
    logits = (gaussians / gaussians.sum(dim=(-2, -1), keepdim=True)).clamp_min(1e-30).log()
    quarter = offsets + torch.tensor([0.25, 0.0], dtype=torch.float64)
    loss = OffsetLoss(codec)
    assert loss(_offset_outputs(logits, offsets), points, visibility).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(_offset_outputs(logits, quarter), points, visibility).item() == pytest.approx(0.25, abs=1e-6)
    assert OffsetLoss(codec, offset_weight=2.0)(_offset_outputs(logits, quarter), points,
                                                visibility).item() == pytest.approx(0.5, abs=1e-6)
    decoded, scores = codec.decode(loss.activate(_offset_outputs(logits, quarter)))
    assert (decoded - points - torch.tensor([1.0, 0.0])).abs().max() < 1e-3  # a quarter cell = 1 px at stride 4
    peaks = (gaussians / gaussians.sum(dim=(-2, -1), keepdim=True)).amax(dim=(-2, -1))
    assert (scores - peaks).abs().max() < 1e-6  # the score: the best cell's spatial softmax, temperature 1


def test_offset_loss_with_neighbours_adds_their_mean_l1_over_labelled_neighbours():
    """4 neighbours each: one cell of y error on every neighbour estimate adds 1; on one neighbour
    of every point, 1/4; an unlabelled neighbour's error counts for nothing (its estimators'
    labelled neighbours still divide by 4)."""
    codec = HeatmapOffsets(64, 4, sigma=1.0, neighbours=_mean_shape_neighbours(4))
    points, visibility = _points(64)
    (gaussians, _, offsets), _ = codec.encode(points, visibility)
    logits = (gaussians / gaussians.sum(dim=(-2, -1), keepdim=True)).clamp_min(1e-30).log()
    loss = OffsetLoss(codec)
    def with_error(channels: slice, v: torch.Tensor = visibility) -> float:
        wrong = offsets.clone()
        wrong[:, :, channels, 1] += 1.0
        return loss(_offset_outputs(logits, wrong), points, v).item()
    assert with_error(slice(0, 0)) == pytest.approx(0.0, abs=1e-6)
    assert with_error(slice(1, 5)) == pytest.approx(1.0, abs=1e-6)
    assert with_error(slice(2, 3)) == pytest.approx(0.25, abs=1e-6)
    hidden = visibility.clone()
    hidden[:, 30] = 0  # unlabelled: its own loss and the estimates of it drop out
    naming = sum(row.count(30) for row in codec.neighbours)
    expected = (4 * 67 - naming) / 4 / 67
    assert with_error(slice(1, 5), hidden) == pytest.approx(expected, abs=1e-6)


def test_realnvp_is_a_density():
    """A flow with random (not near-identity) couplings still integrates to 1 over the plane."""
    torch.manual_seed(0)
    flow = RealNVP()
    for layer in flow.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.2)
    axis = torch.linspace(-12, 12, 601, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.double().log_prob(grid).exp()
    normal = torch.exp(-0.5 * (grid**2).sum(-1)) / (2 * math.pi)
    assert (density - normal).abs().max() > 0.01  # not the base density
    assert density.sum().item() * (axis[1] - axis[0]).item() ** 2 == pytest.approx(1.0, abs=1e-4)


def test_rle_loss_with_an_identity_flow_is_the_closed_form():
    """With the couplings' last layers zeroed the flow is the standard normal; the loss per point
    is then sum(log sigma) - log N(r / sigma) + sum(log 2 sigma + |r / sigma|)."""
    flow = RealNVP()
    for nets in (flow.scales, flow.shifts):
        for net in nets:
            torch.nn.init.zeros_(net[4].weight), torch.nn.init.zeros_(net[4].bias)
    codec = CoordinatesWithScale(64)
    loss = RLE(codec, flow)
    points, visibility = (t.float() for t in _points(64))
    targets, _ = codec.encode(points, visibility)
    raw_sigma = torch.full_like(targets, -1.0)
    residual = torch.full_like(targets, 0.05)
    outputs = torch.cat([targets + residual, raw_sigma], dim=-1)
    sigma = 1 / (1 + math.exp(1.0))
    r = 0.05 / sigma
    log_normal = -r**2 - math.log(2 * math.pi)  # two axes of N(0, 1) at r
    expected = 2 * math.log(sigma) - log_normal + 2 * (math.log(2 * sigma) + r)
    assert loss(outputs, points, visibility).item() == pytest.approx(expected, rel=1e-5)
    decoded, scores = codec.decode(loss.activate(outputs))
    assert (decoded - (points + residual * 32)).abs().max() < 1e-3  # 1 normalised unit = half of 64 px
    assert scores.sub(1 - sigma).abs().max() < 1e-6


def test_simcc_model_takes_its_own_input_size_only():
    model = AxisModel(5, input_size=64, bins=128, encoder="resnet18", decoder_channels=(32, 16, 16, 8, 8))
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 5, 256)
    with pytest.raises(ModelConfigError, match="64 px inputs only, not 96"):
        model.check_input_size(96)


@pytest.mark.parametrize("name", HEADS)
def test_each_head_trains_an_epoch_and_reloads(name, tmp_path):
    """One epoch on synthetic faces through tools/train.py's code path; best.pt reloads, and its
    ONNX graph gives PyTorch's points and scores."""
    from heatnet.evaluation import load_trained
    from heatnet.export import onnx_session
    from heatnet.training import train

    path = EXPERIMENTS / f"{name}.py"
    tiny = ["--dataset=synthetic", "--input_size=64", "--train_limit=16", "--val_limit=4", "--test_limit=4",
            "--batch_size=8", "--workers=0", "--log_images=0", "--epochs=1"]
    result = train(path, settings_for(path, tiny), run_dir=tmp_path / "run", progress=False)
    assert result.steps == 2 and math.isfinite(result.test["nme_%"])
    method, s, _ = load_trained(tmp_path / "run" / "best.pt")
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        points, scores = method.decode(method.model.eval()(images))
    assert points.shape == (2, 68, 2) and scores.shape == (2, 68) and torch.isfinite(points).all()
    session = onnx_session(method, s)  # network and decoder, as tools/benchmark.py times them
    onnx_points, onnx_scores = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    assert abs(onnx_points - points.numpy()).max() < 1e-3 and abs(onnx_scores - scores.numpy()).max() < 1e-4


def test_axis_scores_are_the_weaker_axis_peak_against_the_labels():
    """An exact label on a bin scores 1; an axis at 0.4 of it scores 0.4 whichever axis it is; a peak
    above the label's still scores 1; a flat axis (no peak) decodes to its argmax bin, unmoved."""
    codec = AxisHeatmaps(40, 2.0, 3.0)
    points = torch.tensor([[[10.25, 20.25], [7.75, 30.25]]], dtype=torch.float64)  # on bin centres
    probabilities = _axis_probabilities(codec, points).unflatten(-1, (2, codec.bins))
    _, exact = codec.decode(probabilities.flatten(-2))
    assert exact[0].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    scaled = probabilities * torch.tensor([[[[0.6], [0.4]], [[0.4], [0.6]]]], dtype=torch.float64)
    _, weaker = codec.decode(scaled.flatten(-2))
    assert weaker[0].tolist() == pytest.approx([0.4, 0.4], abs=1e-6)
    _, strong = codec.decode((probabilities * 1.5).flatten(-2))
    assert strong.tolist() == [[1.0, 1.0]]
    flat, _ = codec.decode(torch.full((1, 1, 2 * codec.bins), 1 / codec.bins))
    assert flat.tolist() == [[[-0.25, -0.25]]]  # bin 0 covers input pixel (0 + 0.5) / 2 - 0.5


def test_rle_scores_are_one_minus_the_mean_predicted_sigma():
    outputs = torch.tensor([[[0.0, 0.0, 0.1, 0.3], [0.5, -0.5, 0.0, 0.6]]])
    points, scores = CoordinatesWithScale(64).decode(outputs)
    assert scores[0].tolist() == pytest.approx([0.8, 0.7])
    assert points[0].flatten().tolist() == pytest.approx([31.5, 31.5, 47.5, 15.5])


def test_axis_kl_activates_each_axis_to_its_own_softmax():
    """(B, K, 2N) logits -> x bins then y bins, each a softmax of its own axis at the temperature;
    at a temperature of 0.5 the KL of the activated labels' logits is still zero on the labels."""
    codec = AxisHeatmaps(16, 2.0, 2.0)
    loss = AxisKL(codec, temperature=0.5)
    logits = torch.randn(2, 3, 2 * codec.bins, generator=torch.Generator().manual_seed(0))
    probabilities = loss.activate(logits)
    n = codec.bins
    assert probabilities.shape == logits.shape
    torch.testing.assert_close(probabilities[..., :n], torch.softmax(logits[..., :n] / 0.5, dim=-1))
    torch.testing.assert_close(probabilities[..., n:], torch.softmax(logits[..., n:] / 0.5, dim=-1))
    points, visibility = _points(16)
    points = points.clamp(4, 11)
    at_labels = 0.5 * _axis_probabilities(codec, points).clamp_min(1e-30).log()
    assert loss(at_labels, points, visibility).item() == pytest.approx(0.0, abs=1e-6)


def _recipe_codec(name: str, input_size: int):
    """The codec experiments/`name`.py builds at `input_size`."""
    from heatnet.method import smp_method

    return smp_method(settings_for(EXPERIMENTS / f"{name}.py", [f"--input_size={input_size}"]), 68).codec


@pytest.mark.parametrize("input_size", [160, 96])
def test_2d_heatmap_heads_decode_their_gaussian_targets_to_a_thousandth_of_a_pixel(input_size):
    """The 2-D heads' codecs as their experiments build them (stride 4, sigma 1 heatmap pixel):
    the shipped recipe's windowed soft-argmax with its truncation correction returns every point,
    borders included, within 1e-3 input pixels; integral regression's plain expectation does so
    wherever the Gaussian lies on the map (5 sigma from its borders) and within one sigma of a
    border is pulled inside, the bias its coordinate loss trains the maps to undo."""
    points, visible = _points(input_size)
    recipe = _recipe_codec("w300_unet_js", input_size)
    assert recipe.stride == 4 and recipe.sigma == 1.0
    decoded, _ = recipe.decode(recipe.encode(points, visible)[0])
    assert (decoded - points).abs().max() < 1e-3  # input pixels

    integral = _recipe_codec("w300_integral", input_size)
    decoded, _ = integral.decode(integral.encode(points, visible)[0])
    sigma_px = integral.sigma * integral.stride  # input pixels
    inside = ((points > 5 * sigma_px) & (points < input_size - 1 - 5 * sigma_px)).all(-1)
    assert inside.sum() > 100 and (decoded - points)[inside].abs().max() < 1e-3
    near_left = points[..., 0] < sigma_px
    assert near_left.any() and (decoded[..., 0] - points[..., 0])[near_left].min() > 0.1
