"""Metrics against values computed by hand."""

import numpy as np
import pytest

from datasets.schemes import COFW29, W300
from eval import metrics


def _two_cofw_faces():
    """Two COFW faces whose errors are easy on paper.

    Face 0: pupils (0,0)-(10,0) -> ip 10; outer corners (-5,0)-(15,0) -> io 20;
            every point off by (3,4) -> mean error 5 -> NME ip 0.5, io 0.25.
    Face 1: pupils (0,0)-(0,20) -> ip 20; outer corners (0,-10)-(0,30) -> io 40;
            one point of 29 off by 29 px -> mean error 1 -> NME ip 0.05, io 0.025.
    """
    gt = np.zeros((2, 29, 2))
    gt[0, 16], gt[0, 17], gt[0, 8], gt[0, 9] = (0, 0), (10, 0), (-5, 0), (15, 0)
    gt[1, 16], gt[1, 17], gt[1, 8], gt[1, 9] = (0, 0), (0, 20), (0, -10), (0, 30)
    pred = gt.copy()
    pred[0] += (3, 4)
    pred[1, 3] += (0, 29)
    return pred, gt


def test_nme_two_faces_by_hand():
    pred, gt = _two_cofw_faces()
    ip = metrics.normalizer(gt, COFW29, "ip")
    io = metrics.normalizer(gt, COFW29, "io")
    np.testing.assert_allclose(ip, [10, 20])
    np.testing.assert_allclose(io, [20, 40])
    np.testing.assert_allclose(metrics.nme(pred, gt, ip), [0.5, 0.05])
    np.testing.assert_allclose(metrics.nme(pred, gt, io), [0.25, 0.025])


def test_single_face_and_scalar_normaliser():
    pred, gt = _two_cofw_faces()
    np.testing.assert_allclose(metrics.nme(pred[0], gt[0], 10.0), [0.5])


def test_ip_uses_the_mean_of_each_eye_group():
    gt = np.zeros((68, 2))
    ring = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-2, 0), (2, 0)])
    gt[list(W300.left_eye)] = ring + (10, 10)
    gt[list(W300.right_eye)] = ring + (40, 50)
    np.testing.assert_allclose(metrics.normalizer(gt, W300, "ip"), [50.0])


def test_box_normaliser_is_sqrt_of_area():
    boxes = np.array([[0, 0, 4, 9], [10, 10, 12, 12]])
    np.testing.assert_allclose(metrics.normalizer(None, COFW29, "box", boxes), [6.0, 2.0])


def test_unknown_normaliser_and_shape_mismatch():
    with pytest.raises(ValueError, match="unknown normaliser"):
        metrics.normalizer(np.zeros((29, 2)), COFW29, "iod")
    with pytest.raises(ValueError, match="shape"):
        metrics.nme(np.zeros((2, 29, 2)), np.zeros((2, 68, 2)), 1.0)


def test_failure_rate_counts_strictly_above_and_non_finite():
    errors = [0.01, 0.05, 0.09, 0.11, np.inf]
    assert metrics.failure_rate(errors, 0.08) == pytest.approx(0.6)
    assert metrics.failure_rate(errors, 0.10) == pytest.approx(0.4)
    assert metrics.failure_rate([0.10], 0.10) == 0.0


@pytest.mark.parametrize("errors, expected", [
    (np.zeros(10), 1.0),                        # every face perfect
    (np.full(10, 0.2), 0.0),                    # every face beyond the threshold
    (np.array([0.0, 0.0, 0.5, np.inf]), 0.5),   # half perfect, half failed
    ((np.arange(1000) + 0.5) / 1000 * 0.1, 0.5),  # uniform on [0, t]: CED is a ramp
    (np.full(7, 0.05), 0.5),                    # all at t/2: a step at the middle
])
def test_auc_exact_cases(errors, expected):
    assert metrics.auc(errors, 0.10) == pytest.approx(expected, abs=2e-3)


def test_auc_matches_closed_form():
    errors = np.random.default_rng(0).gamma(2.0, 0.02, size=500)
    exact = np.mean(np.clip(1 - errors / 0.08, 0, 1))
    assert metrics.auc(errors, 0.08) == pytest.approx(exact, abs=1e-3)


def test_ced_curve():
    xs, ys = metrics.ced_curve([0.02, 0.04, 0.2, 0.06], 0.10, step=0.01)
    np.testing.assert_allclose(xs, np.linspace(0, 0.1, 11))
    np.testing.assert_allclose(ys[[0, 2, 4, 6, 10]], [0, 0.25, 0.5, 0.75, 0.75])
    assert np.all(np.diff(ys) >= 0)
