import numpy as np
import pytest
from scipy.integrate import simpson

from heatnet.metrics import LandmarkErrors, auc, cumulative_error_curve, failure_rate, per_image_nme
from heatnet.schemes import LandmarkScheme

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
    # CED: fraction <= e; AUC@0.1 by Simpson on the same curve, divided by 0.1
    errors = np.linspace(0, 0.1, 1001)
    fraction = (nme[None, :] <= errors[:, None]).mean(1)
    assert auc(nme, 0.1) == pytest.approx(simpson(fraction, x=errors) / 0.1)
    # exact area: steps at .01, .03, .05 of height .25 each -> (.09 + .07 + .05) * .25 / .1 = 0.525
    assert auc(nme, 0.1) == pytest.approx(0.525, abs=2e-3)
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
    assert s["nme"] == pytest.approx(100 * (5 / 3 / 10 + 0) / 2)
    assert s["nme_eyes"] == pytest.approx(100 * 5 / 10 / 4) and s["nme_mouth"] == 0
    np.testing.assert_allclose(errors.per_point(), [100 * 5 / 10 / 2, 0, 0])
