import math

import numpy as np
import pytest
import torch

from heatnet.codecs import GaussianHeatmap, NormalisedCoordinates
from heatnet.losses import (L1, MSE, AdaptiveWing, HeatmapJS, HeatmapKL, HeatmapMSE, IntegralLoss, SmoothL1, Wing)

CODEC = GaussianHeatmap(32, 4, sigma=1.0)
COORDS = NormalisedCoordinates(32)
HEATMAP_LOSSES = [HeatmapKL(CODEC), HeatmapKL(CODEC, temperature=0.5), HeatmapMSE(CODEC), HeatmapJS(CODEC),
                  AdaptiveWing(CODEC), IntegralLoss(CODEC)]
COORD_LOSSES = [L1(COORDS), SmoothL1(COORDS), MSE(COORDS), Wing(COORDS)]


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 2, generator=g) * 28 + 2, torch.ones(2, 3)


def test_kl_equals_cross_entropy_minus_entropy():
    points, vis = _batch()
    logits = torch.randn(2, 3, 8, 8)
    targets, _ = CODEC.encode(points, vis)
    q = targets / targets.sum((-2, -1), keepdim=True)
    log_p = torch.log_softmax(logits.flatten(2), -1).view_as(logits)
    cross_entropy = -(q * log_p).sum((-2, -1))
    entropy = -(q * q.log()).sum((-2, -1))
    expected = (cross_entropy - entropy).mean()
    assert HeatmapKL(CODEC)(logits, points, vis).item() == pytest.approx(expected.item(), rel=1e-5)
    perfect = torch.log(q)  # softmax(log q) = q -> zero KL
    assert HeatmapKL(CODEC)(perfect, points, vis).item() == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("loss", HEATMAP_LOSSES + COORD_LOSSES, ids=lambda l: type(l).__name__)
def test_invisible_points_contribute_nothing(loss):
    points, vis = _batch()
    shape = (2, 3, 8, 8) if loss in HEATMAP_LOSSES else (2, 3, 2)
    outputs = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    vis[0, 1] = 0
    base = loss(outputs, points, vis)
    changed = outputs.clone()
    changed[0, 1] = torch.randn(shape[2:]) * 5  # garbage output and target for the invisible point
    moved = points.clone()
    moved[0, 1] += 3
    assert loss(changed, moved, vis).item() == pytest.approx(base.item(), rel=1e-6)
    assert loss(outputs, points, torch.zeros_like(vis)).item() == 0


@pytest.mark.parametrize("loss", HEATMAP_LOSSES + COORD_LOSSES, ids=lambda l: type(l).__name__)
def test_optimising_decreases_the_loss_and_moves_toward_the_target(loss):
    points, vis = _batch()
    shape = (2, 3, 8, 8) if loss in HEATMAP_LOSSES else (2, 3, 2)
    outputs = (torch.randn(shape, generator=torch.Generator().manual_seed(2)) * 0.1).requires_grad_()
    optimiser = torch.optim.Adam([outputs], lr=0.05)
    first = loss(outputs, points, vis).item()
    for _ in range(200):
        optimiser.zero_grad()
        loss(outputs, points, vis).backward()
        optimiser.step()
    assert loss(outputs, points, vis).item() < 0.5 * first
    decoded, _ = loss.codec.decode(loss.activate(outputs.detach()))
    assert (decoded - points).norm(dim=-1).mean() < 1.5  # input pixels; 8 x 8 maps at stride 4



def test_integral_loss_is_the_l1_of_the_soft_argmax_in_input_pixels():
    """Exact values against an independent oracle: a heatmap certain of cell (x 3, y 2) at stride 4
    means input pixel (13.5, 9.5), the centre of the cell's 4 x 4 input pixels (pixel centres at
    integers); a uniform one means the input's centre (15.5, 15.5). The loss is the L1 distance
    in units of the 32 px input, so a target half a pixel off changes it by 0.5 / 32."""
    loss = IntegralLoss(CODEC, js_weight=0.0)
    certain = torch.full((1, 1, 8, 8), -1e4)
    certain[0, 0, 2, 3] = 0.0
    vis = torch.ones(1, 1)
    for point, expected in (((13.5, 9.5), 0.0), ((14.5, 9.5), 1 / 32), ((13.5, 7.0), 2.5 / 32), ((13.0, 10.0), 1 / 32)):
        assert loss(certain, torch.tensor([[point]]), vis).item() == pytest.approx(expected, abs=1e-6)
    uniform = torch.zeros(1, 1, 8, 8)
    assert loss(uniform, torch.tensor([[[15.5, 15.5]]]), vis).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(uniform, torch.tensor([[[16.0, 15.5]]]), vis).item() == pytest.approx(0.5 / 32, abs=1e-6)
    # the regulariser: the Jensen-Shannon divergence to the target Gaussian, zero when softmax(logits) is it
    # (at the centre, where the 8 x 8 grid cuts the Gaussian symmetrically, so its soft-argmax is the point)
    centre = torch.tensor([[[15.5, 15.5]]])
    targets, _ = CODEC.encode(centre, vis)
    matching = torch.log(targets / targets.sum())
    with_js = IntegralLoss(CODEC, js_weight=1.0)
    assert with_js(matching, centre, vis).item() == pytest.approx(0.0, abs=1e-5)
    assert with_js(uniform, centre, vis).item() > 0.05  # no L1, all Jensen-Shannon: far from the Gaussian


def test_wing_smooth_l1_and_adaptive_wing_by_the_papers_formulas_at_their_defaults():
    """Values worked from the papers at the defaults, in pixels of a 128 px input (normalised units
    are pixels / 64): Wing (Feng et al. 2018, w = 10, e = 2): w ln(1 + |x| / e) below w, |x| - C
    above, C = w - w ln(1 + w / e), continuous at w; smooth L1 with beta 0.02; Adaptive Wing
    (Wang et al. 2019, alpha 2.1, omega 14, epsilon 1, theta 0.5) on a map with no target: every
    pixel's y is 0, so the loss of an output d below theta is 14 ln(1 + d^2.1)."""
    codec = NormalisedCoordinates(128)
    points, vis = torch.tensor([[[64.0, 64.0]]]), torch.ones(1, 1)  # the centre: target (0, 0) normalised
    for pixels in (1.0, 6.0, 16.0):  # the second axis exact, so the loss is one axis's
        out = torch.tensor([[[(64 + 0.5 + pixels) / 64 - 1, 0.5 / 64 + 0.0]]])  # normalised (pixel centres at 0.5)
        d = codec.encode(points, vis)[0]
        x = abs(float(out[0, 0, 0] - d[0, 0, 0])) * 64  # pixels
        wing = 10 * math.log1p(x / 2) if x < 10 else x - (10 - 10 * math.log1p(10 / 2))
        diff_y = abs(float(out[0, 0, 1] - d[0, 0, 1]))
        expected = wing / 64 + (10 / 64) * math.log1p(diff_y * 64 / 2)
        assert Wing(codec)(out, points, vis).item() == pytest.approx(expected, rel=1e-5)
        smooth = (lambda v: 0.5 * v * v / 0.02 if v < 0.02 else v - 0.01)
        assert SmoothL1(codec)(out, points, vis).item() == pytest.approx(smooth(x / 64) + smooth(diff_y), rel=1e-5)
    # Adaptive Wing with every output 0.3 above its target y: below theta, the loss is 14 ln(1 + 0.3^(2.1 - y)),
    # weighted 1 + 10 where the target's 3 x 3 maximum exceeds 0.2 (scipy's filter, not the loss's pooling)
    from scipy.ndimage import maximum_filter

    target, _ = CODEC.encode(torch.tensor([[[13.5, 9.5]]]), vis)
    y = target[0, 0].double().numpy()
    weight = 1 + 10 * (maximum_filter(y, size=3, mode="constant") > 0.2)
    per_pixel = 14 * np.log1p(0.3 ** (2.1 - y)) * weight
    assert AdaptiveWing(CODEC)(target + 0.3, torch.tensor([[[13.5, 9.5]]]), vis).item() == \
        pytest.approx(per_pixel.mean(), rel=1e-5)
    # 0.8 above: past theta the loss is linear, A d - C, A and C making it continuous and smooth at theta
    power = 2.1 - y
    a = 14 / (1 + 0.5 ** power) * power * 0.5 ** (power - 1)
    c = 0.5 * a - 14 * np.log1p(0.5 ** power)
    per_pixel = (a * 0.8 - c) * weight
    assert AdaptiveWing(CODEC)(target + 0.8, torch.tensor([[[13.5, 9.5]]]), vis).item() == \
        pytest.approx(per_pixel.mean(), rel=1e-5)


def test_js_of_heatmaps_with_no_overlap_is_log_2_and_kl_follows_its_temperature():
    """Jensen-Shannon is log 2 between two maps on different pixels and 0 between equal ones, at
    any scale of their logits; KL at temperature T is zero on logits T x log(target)."""
    from heatnet.losses import _js_divergence

    p = torch.zeros(1, 2, 3, 4)
    p[0, 0, 0, 0] = p[0, 1, 2, 3] = 1.0
    q = torch.zeros(1, 2, 3, 4)
    q[0, 0, 1, 1] = 1.0
    q[0, 1, 2, 3] = 1.0
    js = _js_divergence(p.clamp_min(1e-30).log(), q)
    torch.testing.assert_close(js, torch.tensor([[math.log(2), 0.0]]))
    codec = GaussianHeatmap(32, 4, 1.0)
    points = torch.tensor([[[13.0, 9.0], [20.5, 17.25]]])
    visibility = torch.ones(1, 2)
    targets, _ = codec.encode(points, visibility)
    log_q = (targets / targets.flatten(2).sum(-1)[..., None, None]).clamp_min(1e-30).log()
    assert HeatmapKL(codec, temperature=0.5)(0.5 * log_q, points, visibility).item() == pytest.approx(0.0, abs=1e-5)
    assert HeatmapKL(codec, temperature=0.5)(log_q, points, visibility).item() > 0.1
    assert HeatmapJS(codec)(log_q, points, visibility).item() == pytest.approx(0.0, abs=1e-5)
