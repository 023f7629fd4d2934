"""Video mode's stabilizer: the similarity fit against NumPy's least squares, no lag on a moving
rigid face, less noise on a noisy one."""

import numpy as np
import pytest

from rar_keras.inference.one_euro import OneEuroConfig
from rar_keras.inference.stabilizer import ShapeStabilizer, apply_similarity, fit_similarity

SHAPE = np.random.default_rng(0).uniform(-50, 50, size=(68, 2))


def moved(t: float) -> tuple[float, float, float, float]:
    """(scale, angle, dx, dy) of a head swaying once a second."""
    phase = 2 * np.pi * t
    return 1.0 + 0.05 * np.sin(2 * phase), 0.1 * np.sin(phase), 300 + 20 * np.sin(phase), 200 + 10 * np.cos(phase)


def transform(points, scale, angle, dx, dy) -> np.ndarray:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + [dx, dy]


def test_similarity_fit_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    target = transform(SHAPE, 1.3, 0.4, 10.0, -5.0) + rng.normal(0, 2.0, SHAPE.shape)
    # z -> a z + b as a linear least-squares problem in (a_re, a_im, b_re, b_im).
    x, y = SHAPE[:, 0], SHAPE[:, 1]
    rows = np.concatenate([np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], 1),
                           np.stack([y, x, np.zeros_like(x), np.ones_like(x)], 1)])
    solution = np.linalg.lstsq(rows, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)[0]
    a, b = fit_similarity(SHAPE, target)
    np.testing.assert_allclose([a.real, a.imag, b.real, b.imag], solution, rtol=1e-9, atol=1e-9)
    fitted = rows @ solution
    np.testing.assert_allclose(apply_similarity(a, b, SHAPE), np.stack([fitted[:68], fitted[68:]], 1), atol=1e-9)


def test_a_moving_rigid_face_passes_without_lag():
    stabilizer = ShapeStabilizer(OneEuroConfig(min_cutoff=0.3, beta=5.0))
    for frame in range(30):
        t = frame / 30
        points = transform(SHAPE, *moved(t))
        np.testing.assert_allclose(stabilizer(points, t), points, atol=1e-6)


@pytest.mark.parametrize("noise", [0.5, 2.0])
def test_noise_on_a_moving_face_is_reduced(noise):
    rng = np.random.default_rng(2)
    stabilizer = ShapeStabilizer(OneEuroConfig(min_cutoff=0.3, beta=5.0))
    raw, smooth = [], []
    for frame in range(90):
        t = frame / 30
        truth = transform(SHAPE, *moved(t))
        observed = truth + rng.normal(0, noise, SHAPE.shape)
        output = stabilizer(observed, t)
        if frame >= 30:                                   # after the filter has settled
            raw.append(np.abs(observed - truth).mean())
            smooth.append(np.abs(output - truth).mean())
    assert np.mean(smooth) < 0.5 * np.mean(raw)


def test_a_long_noisy_still_face_stays_smoothed():
    """Over 110 s the shape kept in the face's frame neither grows nor shrinks, so smoothing lasts."""
    rng = np.random.default_rng(3)
    stabilizer = ShapeStabilizer()
    truth = SHAPE + 300
    raw, smooth = [], []
    for frame in range(3300):
        observed = truth + rng.normal(0, 3.0, SHAPE.shape)
        output = stabilizer(observed, frame / 30)
        if frame >= 3000:
            raw.append(np.abs(observed - truth).mean())
            smooth.append(np.abs(output - truth).mean())
    assert np.mean(smooth) < 0.6 * np.mean(raw)
    np.testing.assert_allclose(np.ptp(output, axis=0), np.ptp(truth, axis=0), rtol=0.05)


def test_reset_forgets_the_face():
    stabilizer = ShapeStabilizer()
    stabilizer(SHAPE, 0.0)
    stabilizer.reset()
    other = SHAPE[::-1] * 2
    np.testing.assert_array_equal(stabilizer(other, 1.0), other)
