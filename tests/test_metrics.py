import numpy as np
import pytest

from heatnet.metrics import LandmarkErrors, auc, cumulative_error_curve, failure_rate, per_image_nme, region_nmes
from heatnet.schemes import IBUG68, LandmarkScheme

TINY = LandmarkScheme("tiny", ("a", "b", "c"), (1, 0, 2), (0, 1), {"eyes": (0, 1), "mouth": (2,)})


def test_nme_by_hand():
    gt = np.array([[[0.0, 0], [10, 0], [5, 5]]])
    pred = gt + np.array([[[3.0, 4], [0, 0], [0, 1]]])  # errors 5, 0, 1
    vis = np.array([[1.0, 1, 1]])
    assert per_image_nme(pred, gt, vis, np.array([10.0]))[0] == pytest.approx((5 + 0 + 1) / 3 / 10)
    vis[0, 0] = 0  # an invisible point is left out, not counted as zero error
    assert per_image_nme(pred, gt, vis, np.array([10.0]))[0] == pytest.approx((0 + 1) / 2 / 10)


def test_failure_rate_and_auc_by_hand():
    nme = np.array([0.01, 0.03, 0.05, 0.2])
    assert failure_rate(nme, 0.1) == 0.25
    # exact area under the step curve: steps at .01, .03, .05 of height .25 -> (.09 + .07 + .05) * .25 / .1
    assert auc(nme, 0.1) == pytest.approx(0.525, abs=1e-12)
    assert auc(np.array([0.1, 0.3]), 0.1) == 0.0 and auc(np.zeros(3), 0.1) == 1.0
    e, f = cumulative_error_curve(nme, 0.1)
    assert f[0] == 0 and f[-1] == 0.75


def test_summary_mae_rmse_regions():
    errors = LandmarkErrors(TINY)
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, 0] = [3, 4]  # |dx| 3, |dy| 4 on one point
    errors.add(pred, gt, np.ones((2, 3)), np.array([10.0, 10.0]))
    s = errors.summary()
    assert s["mae_px"] == pytest.approx(7 / 12)
    assert s["rmse_px"] == pytest.approx(np.sqrt(25 / 12))
    assert s["nme_%"] == pytest.approx(100 * (5 / 3 / 10 + 0) / 2)
    assert s["nme_eyes_%"] == pytest.approx(100 * 5 / 10 / 4) and s["nme_mouth_%"] == 0
    np.testing.assert_allclose(errors.per_point(), [100 * 5 / 10 / 2, 0, 0])


def test_region_nmes_are_the_summary_regions_by_name_and_nothing_else():
    """The regions table (reports, TensorBoard) reads each region of the scheme from the summary,
    under the region's own name; the whole-face NME, its median, FR, AUC and pixel errors stay out."""
    errors = LandmarkErrors(TINY)
    pred = np.zeros((2, 3, 2))
    pred[0, 0], pred[1, 2] = [3, 4], [0, 2]  # eye error 5 on image 0, mouth error 2 on image 1
    errors.add(pred, np.zeros((2, 3, 2)), np.ones((2, 3)), np.array([10.0, 10.0]))
    assert region_nmes(errors.summary()) == {"eyes": pytest.approx(100 * 5 / 2 / 10 / 2),
                                             "mouth": pytest.approx(100 * 2 / 10 / 2)}
    assert region_nmes({"nme_%": 1.0, "nme_median_%": 2.0, "nme_jaw_%": 3.0, "nme_jaw_px": 4.0, "fr@10_%": 5.0,
                        "a_nme_x_%": 6.0}) == {"jaw": 3.0}


def test_region_nme_is_a_mean_over_images_like_the_whole_face():
    """Image 1 shows one eye point (error 4), image 2 both (errors 0, 0): per image 0.4 and 0,
    mean 0.2 (pooling the three points would give 4 / 3 / 10)."""
    errors = LandmarkErrors(TINY)
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, 0] = [4, 0]
    vis = np.array([[1.0, 0, 1], [1, 1, 1]])
    errors.add(pred, gt, vis, np.array([10.0, 10.0]))
    assert errors.summary()["nme_eyes_%"] == pytest.approx(100 * (0.4 + 0.0) / 2)


def test_images_without_visible_points_are_left_out_and_counted():
    errors = LandmarkErrors(TINY)
    gt = np.zeros((3, 3, 2))
    pred = gt + 1.0  # every point off by sqrt(2)
    vis = np.array([[1.0, 1, 1], [0, 0, 0], [1, 1, 1]])
    errors.add(pred, gt, vis, np.array([10.0, 10.0, 10.0]))
    s = errors.summary()
    assert s["images"] == 2 and s["images_without_points"] == 1
    assert s["nme_%"] == pytest.approx(100 * np.sqrt(2) / 10) and s["fr@10_%"] == pytest.approx(100 * 1.0)
    assert s["auc@10_%"] == pytest.approx(0.0) and len(errors.per_image()) == 2


def test_a_split_uses_one_normaliser_for_all_its_images():
    """If one face lacks an outer eye corner, the whole split is normalised by box size."""
    from pathlib import Path

    from heatnet.samples import Normaliser, RecordSource
    from heatnet.formats import Record

    scheme = LandmarkScheme("tiny", ("a", "b", "c"), (1, 0, 2), (0, 1), {"all": (0, 1, 2)})
    points = np.array([[0.0, 0], [6, 0], [3, 8]], np.float32)
    full = Record(Path("a.png"), points, np.ones(3, np.float32), pixels=np.zeros((20, 20), np.uint8))
    partial = Record(Path("b.png"), points, np.array([1, 0, 1], np.float32), pixels=np.zeros((20, 20), np.uint8))
    assert RecordSource([full], scheme).normaliser is Normaliser.INTER_OCULAR
    assert RecordSource([full], scheme).normalisers == [6.0]
    mixed = RecordSource([full, partial], scheme)
    assert mixed.normaliser is Normaliser.BOX
    assert mixed.normalisers == pytest.approx([np.sqrt(6 * 8), np.sqrt(3 * 8)])


def test_every_summary_key_names_its_unit():
    """Percentages end in `_%` (FR and AUC with their threshold in NME %), pixels in `_px`;
    only the counts have no unit."""
    errors = LandmarkErrors(IBUG68)
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (3, 68, 2))
    errors.add(truth + rng.normal(0, 2, truth.shape), truth, np.ones((3, 68)), np.full(3, 50.0))
    summary = errors.summary()
    assert {"nme_%", "nme_median_%", "fr@10_%", "auc@10_%", "mae_px", "rmse_px", "nme_eyes_%"} <= set(summary)
    assert all(k.endswith(("_%", "_px")) or k in ("images", "images_without_points") for k in summary), summary


def _oracle_nme(pred, gt, vis, norm) -> list[float]:
    """Per-image NME by loops over the points, written apart from heatnet.metrics."""
    out = []
    for p, g, v, n in zip(pred, gt, vis, norm):
        seen = [float(np.hypot(*(p[k] - g[k]))) for k in range(len(v)) if v[k] > 0]
        out.append(sum(seen) / len(seen) / n if seen else float("nan"))
    return out


def test_summary_equals_a_point_by_point_oracle_on_uneven_faces():
    """Non-zero truth, mixed visibility (one image with a single visible point, one with none, a
    region unseen in every image), torch and numpy inputs: every summary value, the per-image and
    per-point NME agree with loops over the points to 1e-9."""
    import math
    import warnings

    import torch

    scheme = LandmarkScheme("four", ("a", "b", "c", "d"), (1, 0, 2, 3), (0, 1),
                            {"eyes": (0, 1), "mouth": (2,), "chin": (3,)})
    rng = np.random.default_rng(3)
    gt = rng.uniform(20, 80, (6, 4, 2))
    pred = gt + rng.normal(0, 1, gt.shape) * np.array([1.0, 2, 1, 6, 1, 8])[:, None, None]  # some fail at 8 %
    vis = np.ones((6, 4))
    vis[:, 3] = 0  # the chin is never visible
    vis[1] = [0, 0, 1, 0]  # a single visible point still makes the image count
    vis[2] = 0  # no visible point: left out and counted
    vis[3, 0] = 0  # an invisible point with a large error adds nothing anywhere
    pred[3, 0] += 500
    norm = rng.uniform(30, 60, 6)
    norm[2] = 0.0  # a face without points may have no normaliser either

    errors = LandmarkErrors(scheme)
    errors.add(torch.tensor(pred[:3], requires_grad=True), gt[:3], vis[:3].astype(np.int64), norm[:3])
    errors.add(pred[3:].astype(np.float64), torch.tensor(gt[3:]), torch.tensor(vis[3:]), norm[3:].tolist())
    assert all(a.dtype == np.float64 for a in errors.arrays())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-slice or 0/0 warning leaks out of the metrics
        s = errors.summary(threshold=0.08)
        point = errors.per_point()

    keep = [i for i in range(6) if vis[i].sum() > 0]
    nme = [_oracle_nme(pred, gt, vis, norm)[i] for i in keep]
    visible = [(i, k) for i in keep for k in range(4) if vis[i, k] > 0]
    diffs = [abs(pred[i, k, a] - gt[i, k, a]) for i, k in visible for a in (0, 1)]
    assert s["images"] == 5 and s["images_without_points"] == 1
    assert s["nme_%"] == pytest.approx(100 * sum(nme) / len(nme), abs=1e-9)
    assert s["nme_median_%"] == pytest.approx(100 * sorted(nme)[len(nme) // 2], abs=1e-9)
    assert s["fr@8_%"] == pytest.approx(100 * sum(e > 0.08 for e in nme) / len(nme), abs=1e-9)
    assert s["auc@8_%"] == pytest.approx(100 * sum(max(0.0, 1 - e / 0.08) for e in nme) / len(nme), abs=1e-9)
    assert 0 < s["auc@8_%"] < 100 and 0 < s["fr@8_%"] < 100
    assert s["mae_px"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-9)
    assert s["rmse_px"] == pytest.approx(math.sqrt(sum(d * d for d in diffs) / len(diffs)), abs=1e-9)
    for region, idx in (("eyes", [0, 1]), ("mouth", [2])):
        per = [e for e in _oracle_nme(pred[:, idx], gt[:, idx], vis[:, idx], norm) if not math.isnan(e)]
        assert s[f"nme_{region}_%"] == pytest.approx(100 * sum(per) / len(per), abs=1e-9)
    assert math.isnan(s["nme_chin_%"])
    np.testing.assert_allclose(np.sort(errors.per_image()), np.sort(nme), atol=1e-12)
    for k in range(4):
        seen = [float(np.hypot(*(pred[i, k] - gt[i, k]))) / norm[i] for i in range(6) if vis[i, k] > 0]
        assert point[k] == pytest.approx(100 * sum(seen) / len(seen) if seen else 0.0, abs=1e-9)


def test_the_curve_and_the_failure_rate_at_their_edges():
    """An image exactly at the threshold is not a failure and is under the curve at that error;
    the curve has 1001 steps unless told."""
    assert failure_rate(np.array([0.1, 0.05]), 0.1) == 0.0
    errors, fraction = cumulative_error_curve(np.array([0.0, 0.05]), 0.1, steps=3)
    np.testing.assert_array_equal(errors, [0.0, 0.05, 0.1])
    np.testing.assert_array_equal(fraction, [0.5, 1.0, 1.0])
    errors, fraction = cumulative_error_curve(np.array([0.02]), 0.1)
    assert len(errors) == len(fraction) == 1001 and errors[20] == pytest.approx(0.002)
