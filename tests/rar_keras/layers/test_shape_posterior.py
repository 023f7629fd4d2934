"""The shape posterior (a Gaussian shape prior on the output) against the exact solve in NumPy."""

import keras
import numpy as np
import pytest

from rar_keras.layers import ShapePosterior
from rar_keras.layers.shape_posterior import DENOMINATOR_FLOOR
from rar_keras.models.shape_bank import generalised_procrustes
from rar_keras.models.shape_prior import SIMILARITY_VARIANCE, build_shape_prior, similarity_directions
from tests.rar_keras.layers.test_heatmap_shape_fit import _face_like_shapes, _numpy_similarity


def _layer(shapes, **options):
    prior = build_shape_prior(shapes)
    layer = ShapePosterior(shapes.shape[1], **options)
    layer.set_prior(prior.mean, prior.eigenvectors, prior.eigenvalues)
    return layer, prior


def _numpy_posterior(shape, visibility, training_shapes, visible_noise, hidden_noise):
    """One face, written out: the covariance of the aligned training shapes with the similarity
    directions added, the frame by a complex-number similarity, the posterior mean by a direct solve."""
    aligned, mean = generalised_procrustes(training_shapes.astype(np.float64))
    flat = aligned.reshape(len(aligned), -1) - mean.reshape(-1)
    num_points = len(mean)
    zero, one = np.zeros(num_points), np.ones(num_points)
    directions = [np.stack([one, zero], 1), np.stack([zero, one], 1), mean, np.stack([-mean[:, 1], mean[:, 0]], 1)]
    covariance = flat.T @ flat / (len(flat) - 1)
    for direction in directions:
        unit = direction.reshape(-1) / np.linalg.norm(direction)
        covariance += SIMILARITY_VARIANCE * np.outer(unit, unit)
    a, b = _numpy_similarity(shape.astype(np.float64), mean, visibility + 1e-4)
    moved = a * (shape[:, 0] + 1j * shape[:, 1]) + b
    y = np.stack([moved.real, moved.imag], -1).reshape(-1)
    noise = np.repeat(visible_noise + (hidden_noise - visible_noise) * (1 - visibility), 2)
    x = mean.reshape(-1) + covariance @ np.linalg.solve(covariance + np.diag(noise), y - mean.reshape(-1))
    back = ((x[0::2] + 1j * x[1::2]) - b) / a
    return np.stack([back.real, back.imag], -1)


def test_the_prior_is_the_aligned_covariance_with_the_similarity_directions_free():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(300, rng)
    prior = build_shape_prior(shapes)
    vectors = prior.eigenvectors.astype(np.float64)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(136), atol=1e-4)
    covariance = vectors @ np.diag(prior.eigenvalues) @ vectors.T
    aligned, mean = generalised_procrustes(shapes)
    # Shift x, shift y, scale and rotation of the mean, written out, each a unit vector.
    zero, one = np.zeros(68), np.ones(68)
    directions = np.stack([d.reshape(-1) / np.linalg.norm(d) for d in
                           (np.stack([one, zero], 1), np.stack([zero, one], 1), mean,
                            np.stack([-mean[:, 1], mean[:, 0]], 1))])
    np.testing.assert_allclose(similarity_directions(prior.mean.astype(np.float64)), directions, atol=1e-5)
    flat = aligned.reshape(300, -1) - mean.reshape(-1)
    # The aligned shapes' covariance, plus SIMILARITY_VARIANCE along each similarity direction.
    want = flat.T @ flat / 299 + SIMILARITY_VARIANCE * directions.T @ directions
    np.testing.assert_allclose(covariance, want, atol=1e-5)
    assert prior.eigenvalues.min() > 0
    with pytest.raises(ValueError, match="at least 2L"):
        build_shape_prior(shapes[:100])


def test_layer_matches_the_exact_posterior_in_numpy():
    rng = np.random.default_rng(1)
    shapes = _face_like_shapes(300, rng)
    layer, _ = _layer(shapes, visible_noise=1e-4, hidden_noise=1e-2, steps=24)
    shipped, _ = _layer(shapes)                # the default: 16 steps
    truth = _face_like_shapes(3, rng)
    # Rotated, scaled and shifted faces, some points hidden and moved far off.
    angle = np.array([0.0, 0.3, -0.5])[:, None]
    turned = (truth[..., 0] - 64 + 1j * (truth[..., 1] - 64)) * np.exp(1j * angle) * np.array([1.0, 0.7, 1.4])[:, None]
    observed = np.stack([turned.real + 70, turned.imag + 60], -1)
    visibility = rng.uniform(0.6, 1.0, size=(3, 68))
    hidden = rng.random((3, 68)) < 0.3
    visibility[hidden] = rng.uniform(0.0, 0.2, size=hidden.sum())
    observed[hidden] += rng.normal(0, 8, size=(hidden.sum(), 2))
    got = np.asarray(layer(observed.astype(np.float32), visibility.astype(np.float32)))
    got_shipped = np.asarray(shipped(observed.astype(np.float32), visibility.astype(np.float32)))
    for face in range(3):
        want = _numpy_posterior(observed[face], visibility[face], shapes, 1e-4, 1e-2)
        np.testing.assert_allclose(got[face], want, atol=0.01)
        np.testing.assert_allclose(got_shipped[face], want, atol=0.1)   # 16 steps: within 0.03 px when written
        # The hidden points moved (towards the training shapes), the visible ones barely.
        moved = np.linalg.norm(want - observed[face], axis=-1)
        assert moved[hidden[face]].mean() > 5 * moved[~hidden[face]].mean()


def test_hidden_points_move_back_towards_the_face_and_visible_ones_stay():
    rng = np.random.default_rng(2)
    shapes = _face_like_shapes(300, rng, noise=0.1)
    layer, _ = _layer(shapes)
    truth = _face_like_shapes(4, rng, noise=0.1)
    observed, visibility = truth.copy(), np.ones((4, 68))
    observed[:, 10:20] += 15.0                # a block of points displaced by an occluder, predicted hidden
    visibility[:, 10:20] = 0.0
    got = np.asarray(layer(observed.astype(np.float32), visibility.astype(np.float32)))
    before = np.linalg.norm(observed - truth, axis=-1)
    after = np.linalg.norm(got - truth, axis=-1)
    assert after[:, 10:20].mean() < 0.3 * before[:, 10:20].mean()
    assert after[:, 20:].max() < 1.0
    # Fully trusted points (all visible, a tiny noise) come back nearly as they went in.
    exact = np.asarray(layer(truth.astype(np.float32), np.ones((4, 68), np.float32)))
    assert np.abs(exact - truth).max() < 0.5


def test_steps_past_convergence_stay_finite_and_the_floor_survives_float16():
    """Run long enough, the residual vanishes and the step ratios would be 0 / 0: the floor keeps
    them 0. fp16 files store constants in float16, where the floor must not round to 0."""
    rng = np.random.default_rng(3)
    shapes = _face_like_shapes(300, rng)
    layer, _ = _layer(shapes, steps=60)
    truth = _face_like_shapes(8, rng).astype(np.float32)
    got = np.asarray(layer(truth, np.ones((8, 68), np.float32)))
    assert np.isfinite(got).all()
    for face in range(8):
        np.testing.assert_allclose(got[face], _numpy_posterior(truth[face], np.ones(68), shapes, 1e-4, 1e-2),
                                   atol=0.05)
    assert np.float16(DENOMINATOR_FLOOR) > 0


def test_bad_settings_are_refused_and_the_config_round_trips():
    with pytest.raises(ValueError, match="visible_noise"):
        ShapePosterior(68, visible_noise=0.1, hidden_noise=0.01)
    with pytest.raises(ValueError, match="steps"):
        ShapePosterior(68, steps=0)
    layer = ShapePosterior(5, visible_noise=2e-4, hidden_noise=3e-2, steps=7)
    clone = ShapePosterior.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is ShapePosterior and restored.get_config() == layer.get_config()
