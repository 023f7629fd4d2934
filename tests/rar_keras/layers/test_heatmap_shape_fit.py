"""The heatmap shape fit (regularised landmark mean-shift under a Gaussian shape model) against NumPy."""

import keras
import numpy as np
import pytest

from rar_keras.layers import HeatmapShapeFit
from rar_keras.models.gaussian_shape_model import build_gaussian_shape_model
from rar_keras.models.shape_bank import generalised_procrustes

STRIDE = 4
GRID = 32          # heatmap cells a side: a 128 px crop


def _face_like_shapes(count, rng, noise=0.3):
    """Shapes with three modes of variation (width, a wave, a tilt of the top) about a 68-point oval."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    base = np.stack([np.cos(angles) * 20, np.sin(angles) * 26], 1)
    modes = np.stack([np.stack([np.cos(angles), 0 * angles], 1), np.stack([0 * angles, np.sin(3 * angles)], 1),
                      np.stack([np.sin(angles) * (angles < np.pi), 0 * angles], 1)])
    coefficients = rng.normal(0, 3, size=(count, 3))
    return base + np.einsum("nk,kld->nld", coefficients, modes) + 64 + rng.normal(0, noise, size=(count, 68, 2))


def _blobs(points, sigma_cells=0.7):
    """Heatmap probabilities (B, L, H, W): a normalised Gaussian blob at each point (crop pixels)."""
    cells = (points + 0.5) / STRIDE - 0.5
    grid = np.arange(GRID, dtype=np.float64)
    gx = np.exp(-0.5 * ((grid - cells[..., 0:1]) / sigma_cells) ** 2)
    gy = np.exp(-0.5 * ((grid - cells[..., 1:2]) / sigma_cells) ** 2)
    maps = gy[..., :, None] * gx[..., None, :]
    return (maps / maps.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)


def _layer(shapes, components=6, **options):
    model = build_gaussian_shape_model(shapes, components)
    layer = HeatmapShapeFit(shapes.shape[1], components, stride=STRIDE, **options)
    layer.set_shape_model(model.mean, model.basis, model.variances)
    return layer, model


def _numpy_similarity(src, dst, weights):
    """Weighted least-squares z -> a z + b from src onto dst (complex numbers)."""
    zs, zd = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    w = weights / weights.sum()
    ms, md = (w * zs).sum(), (w * zd).sum()
    a = (w * np.conj(zs - ms) * (zd - md)).sum() / (w * np.abs(zs - ms) ** 2).sum()
    return a, md - a * ms


def _numpy_fit(probabilities, start, visibility, model, radii, em_steps, ridge, power=0.5, floor=0.1):
    """One face, written out: a full 2-D kernel at every round, complex-number similarities."""
    cells = (np.arange(GRID) + 0.5) * STRIDE - 0.5
    xs, ys = np.meshgrid(cells, cells)                     # (H, W) pixel centres of the cells
    weights = np.minimum(visibility ** power + floor, 1.0)
    mean, basis = model.mean.astype(np.float64).reshape(-1), model.basis.astype(np.float64).reshape(len(model.basis), -1)
    shrink = model.variances / (model.variances + ridge)
    current = mean.reshape(-1, 2)
    shape = start.astype(np.float64)
    for radius in radii:
        rho = radius * STRIDE
        targets = np.zeros_like(shape)
        for landmark, (x, y) in enumerate(shape):
            kernel = probabilities[landmark] * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * rho * rho))
            targets[landmark] = [(kernel * xs).sum() / kernel.sum(), (kernel * ys).sum() / kernel.sum()]
        a, b = _numpy_similarity(current, targets, weights + 1e-4)
        local = ((targets[:, 0] + 1j * targets[:, 1]) - b) / a
        local = np.stack([local.real, local.imag], -1).reshape(-1)
        for _ in range(em_steps):
            filled = np.repeat(weights, 2) * local + (1 - np.repeat(weights, 2)) * current.reshape(-1)
            current = (mean + basis.T @ (shrink * (basis @ (filled - mean)))).reshape(-1, 2)
        placed = a * (current[:, 0] + 1j * current[:, 1]) + b
        shape = np.stack([placed.real, placed.imag], -1)
    a, b = _numpy_similarity(current, targets, weights + 1e-4)
    placed = a * (current[:, 0] + 1j * current[:, 1]) + b
    shape = np.stack([placed.real, placed.imag], -1)
    return shape


def test_gaussian_shape_model_is_orthonormal_and_its_variances_are_the_training_spread():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(200, rng)
    model = build_gaussian_shape_model(shapes, 6)
    basis = model.basis.reshape(6, -1)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-5)
    aligned, mean = generalised_procrustes(shapes)
    projections = (aligned.reshape(200, -1) - mean.reshape(-1)) @ basis.T
    np.testing.assert_allclose(model.variances, (projections ** 2).sum(0) / 199, rtol=1e-4)
    assert np.all(np.diff(model.variances) <= 0)
    with pytest.raises(ValueError, match="more than 6 training shapes"):
        build_gaussian_shape_model(shapes[:6], 6)
    with pytest.raises(ValueError, match="1 to 136"):
        build_gaussian_shape_model(shapes, 137)


def test_layer_matches_the_numpy_fit_on_random_heatmaps():
    rng = np.random.default_rng(1)
    shapes = _face_like_shapes(100, rng)
    layer, model = _layer(shapes, radii=(3.0, 2.0, 1.0), em_steps=3, ridge=0.003)
    truth = _face_like_shapes(3, rng)
    logits = rng.normal(0, 1.0, size=(3, 68, GRID, GRID))                     # rough, several peaks
    probabilities = _blobs(truth) * np.exp(logits)
    probabilities = (probabilities / probabilities.sum(axis=(-2, -1), keepdims=True)).astype(np.float32)
    start = (truth + rng.normal(0, 3, size=truth.shape)).astype(np.float32)
    visibility = rng.uniform(0, 1, size=(3, 68)).astype(np.float32)
    fitted = layer(probabilities, start, visibility).numpy()
    for face in range(3):
        expected = _numpy_fit(probabilities[face], start[face], visibility[face], model, (3.0, 2.0, 1.0), 3, 0.003)
        np.testing.assert_allclose(fitted[face], expected, atol=2e-3)


def test_kernel_targets_are_the_kernel_weighted_mean():
    rng = np.random.default_rng(2)
    layer, _ = _layer(_face_like_shapes(50, rng))
    probabilities = rng.uniform(size=(1, 68, GRID, GRID)).astype(np.float32)
    shape = rng.uniform(10, 118, size=(1, 68, 2)).astype(np.float32)
    targets = layer.kernel_targets(probabilities, shape, 1.5).numpy()[0]
    cells = (np.arange(GRID) + 0.5) * STRIDE - 0.5
    xs, ys = np.meshgrid(cells, cells)
    for landmark in (0, 17, 67):
        x, y = shape[0, landmark]
        kernel = probabilities[0, landmark] * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 6.0 ** 2))
        np.testing.assert_allclose(targets[landmark], [(kernel * xs).sum() / kernel.sum(),
                                                       (kernel * ys).sum() / kernel.sum()], atol=1e-3)


def test_a_landmark_with_no_mass_under_its_kernel_keeps_its_place_and_zero_weights_stay_defined():
    rng = np.random.default_rng(5)
    layer, _ = _layer(_face_like_shapes(50, rng), weight_floor=0.0)
    probabilities = np.zeros((1, 68, GRID, GRID), np.float32)
    probabilities[:, :, 30, 30] = 1.0                                  # every map one-hot far from the points
    shape = np.full((1, 68, 2), 20.0, np.float32) + rng.uniform(-2, 2, size=(1, 68, 2)).astype(np.float32)
    np.testing.assert_allclose(layer.kernel_targets(probabilities, shape, 1.0).numpy(), shape, atol=1e-3)
    truth = _face_like_shapes(1, rng)
    fitted = layer(_blobs(truth), truth.astype(np.float32), np.zeros((1, 68), np.float32)).numpy()
    # No point weighs anything: the mean shape (no mode is filled in), placed on the targets.
    assert np.isfinite(fitted).all()
    assert float(np.linalg.norm(fitted.mean(1) - truth.mean(1))) < 0.5
    assert 1.0 < float(np.linalg.norm(fitted - truth, axis=-1).mean()) < 6.0


def test_a_hidden_point_is_placed_by_the_others_and_a_seen_one_by_its_heatmap():
    rng = np.random.default_rng(3)
    shapes = _face_like_shapes(200, rng, noise=0.05)
    layer, _ = _layer(shapes, components=6, weight_floor=0.0)
    truth = _face_like_shapes(1, rng, noise=0.05)
    displaced = truth.copy()
    displaced[0, 30] += [14.0, -10.0]                                  # its heatmap peaks 17 px off
    probabilities = _blobs(displaced)
    seen, hidden = np.ones((1, 68), np.float32), np.ones((1, 68), np.float32)
    hidden[0, 30] = 0.0
    error = lambda visibility: float(np.linalg.norm(                      # noqa: E731
        layer(probabilities, displaced.astype(np.float32), visibility).numpy()[0, 30] - truth[0, 30]))
    assert error(hidden) < 2.0
    assert error(seen) > 4 * error(hidden)
    # The other points follow their heatmaps, which are right.
    fitted = layer(probabilities, displaced.astype(np.float32), hidden).numpy()[0]
    assert float(np.linalg.norm(np.delete(fitted - truth[0], 30, axis=0), axis=-1).mean()) < 1.0


def test_a_start_far_off_reaches_the_heatmaps_at_a_wide_kernel():
    rng = np.random.default_rng(4)
    shapes = _face_like_shapes(200, rng, noise=0.05)
    truth = _face_like_shapes(2, rng, noise=0.05)
    start = (truth + [9.0, -7.0]).astype(np.float32)                   # every point 11 px off
    probabilities = _blobs(truth)
    ones = np.ones((2, 68), np.float32)
    error = lambda layer: float(np.linalg.norm(layer(probabilities, start, ones).numpy() - truth, axis=-1).mean())  # noqa: E731
    assert error(_layer(shapes, radii=(3.0, 2.0, 1.0))[0]) < 1.0
    assert error(_layer(shapes, radii=(0.5,))[0]) > 5.0              # a narrow kernel stays where it starts


def test_bad_settings_are_refused_and_the_config_round_trips():
    with pytest.raises(ValueError, match="radii"):
        HeatmapShapeFit(68, radii=())
    with pytest.raises(ValueError, match="em_steps"):
        HeatmapShapeFit(68, em_steps=0)
    with pytest.raises(ValueError, match="weight_floor"):
        HeatmapShapeFit(68, weight_floor=-0.1)
    layer = HeatmapShapeFit(5, 3, stride=2, radii=(2.5, 1.0), em_steps=2, ridge=0.01, visibility_power=1.0,
                            weight_floor=0.2)
    clone = HeatmapShapeFit.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is HeatmapShapeFit and restored.get_config() == layer.get_config()
