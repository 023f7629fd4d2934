"""Video mode's stabilizer: no lag on a moving face whose motion is known (or taken from the
landmarks), less noise on a noisy one, no drift over a long video."""

import numpy as np

from datasets.geometry import apply_affine
from rar_keras.inference.one_euro import OneEuroConfig
from rar_keras.inference.stabilizer import LandmarkStabilizer

SHAPE = np.random.default_rng(0).uniform(-50, 50, size=(68, 2))
CONFIG = OneEuroConfig(min_cutoff=0.5, beta=1.0)


def pose(t: float) -> np.ndarray:
    """The 2x3 map of a head swaying once a second (scale, angle, shift)."""
    phase = 2 * np.pi * t
    scale, angle = 1.0 + 0.05 * np.sin(2 * phase), 0.1 * np.sin(phase)
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, 300 + 20 * np.sin(phase)], [s, c, 200 + 10 * np.cos(phase)]])


def motion(t0: float, t1: float) -> np.ndarray:
    """The map from the face at t0 to the face at t1, computed independently of the product."""
    before, after = np.vstack([pose(t0), [0, 0, 1]]), np.vstack([pose(t1), [0, 0, 1]])
    return (after @ np.linalg.inv(before))[:2]


def test_a_moving_rigid_face_passes_without_lag_with_or_without_its_motion():
    for known_motion in (True, False):
        stabilizer = LandmarkStabilizer(CONFIG)
        for frame in range(30):
            t = frame / 30
            points = apply_affine(SHAPE, pose(t))
            given = motion(t - 1 / 30, t) if known_motion and frame else None
            np.testing.assert_allclose(stabilizer(points, t, given), points, atol=1e-6)


def test_noise_on_a_moving_face_is_reduced_more_when_the_motion_is_known():
    errors = {}
    for known_motion in (True, False):
        rng = np.random.default_rng(2)
        stabilizer = LandmarkStabilizer(CONFIG)
        raw, smooth = [], []
        for frame in range(90):
            t = frame / 30
            truth = apply_affine(SHAPE, pose(t))
            observed = truth + rng.normal(0, 2.0, SHAPE.shape)
            output = stabilizer(observed, t, motion(t - 1 / 30, t) if known_motion and frame else None)
            if frame >= 30:                                   # after the filter has settled
                raw.append(np.abs(observed - truth).mean())
                smooth.append(np.abs(output - truth).mean())
        errors[known_motion] = np.mean(smooth) / np.mean(raw)
    assert errors[True] < 0.4, errors                      # all of the noise is filtered
    assert errors[False] < 0.8, errors                     # the shape's noise only: the pose passes
    assert errors[True] < errors[False], errors


def test_a_long_noisy_still_face_neither_drifts_nor_changes_size():
    rng = np.random.default_rng(3)
    stabilizer = LandmarkStabilizer()
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
    np.testing.assert_allclose(output.mean(0), truth.mean(0), atol=1.0)


def test_reset_forgets_the_face():
    stabilizer = LandmarkStabilizer()
    stabilizer(SHAPE, 0.0)
    stabilizer.reset()
    other = SHAPE[::-1] * 2
    np.testing.assert_array_equal(stabilizer(other, 1.0), other)


def test_an_expression_change_passes_quickly_on_a_still_head():
    """The default filter lets a mouth that opens by 8 % of the face's size in 0.1 s through: 90 %
    of it shows within 0.2 s of its start, while noise on the still face is damped."""
    rng = np.random.default_rng(4)
    face = SHAPE + 300
    size = float(np.linalg.norm(np.ptp(face, axis=0)))
    stabilizer, still = LandmarkStabilizer(), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    opening, raw, smooth = [], [], []
    for frame in range(60):
        truth = face.copy()
        truth[48:, 1] += 0.08 * size * np.clip((frame - 30) / 3, 0, 1)
        observed = truth + rng.normal(0, 0.004 * size, face.shape)
        output = stabilizer(observed, frame / 30, still if frame else None)
        opening.append((output[48:, 1] - face[48:, 1]).mean() / (0.08 * size))
        if 15 <= frame < 30:
            raw.append(np.abs(observed - truth).mean())
            smooth.append(np.abs(output - truth).mean())
    assert max(opening[30:36]) > 0.9, opening[30:36]
    assert np.mean(smooth) < 0.5 * np.mean(raw)
