"""The custom layers against NumPy references, and their config round-trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rar_keras.layers import AttentiveRefiner, HeatmapDecoder, RobustShapeInit, ShapeIndexedPooling
from rar_keras.models.shape_bank import build_shape_bank

STRIDE = 4


def numpy_bilinear(features, points, stride):
    """Reference SIP: bilinear sampling with border clamping, one point at a time."""
    batch, height, width, _ = features.shape
    out = np.zeros(points.shape[:2] + (features.shape[-1],), np.float32)
    for b in range(batch):
        for i, (px, py) in enumerate(points[b]):
            x = min(max((px + 0.5) / stride - 0.5, 0), width - 1)
            y = min(max((py + 0.5) / stride - 0.5, 0), height - 1)
            x0, y0 = min(int(np.floor(x)), width - 2), min(int(np.floor(y)), height - 2)
            fx, fy = x - x0, y - y0
            out[b, i] = ((1 - fx) * (1 - fy) * features[b, y0, x0] + fx * (1 - fy) * features[b, y0, x0 + 1]
                         + (1 - fx) * fy * features[b, y0 + 1, x0] + fx * fy * features[b, y0 + 1, x0 + 1])
    return out


def test_sip_matches_numpy_reference_and_passes_gradients():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 8, 8, 5)).astype(np.float32)
    points = rng.uniform(-6, 36, size=(2, 7, 2)).astype(np.float32)  # some outside the map
    layer = ShapeIndexedPooling(stride=STRIDE)
    sampled = layer(features, points).numpy()
    np.testing.assert_allclose(sampled, numpy_bilinear(features, points, STRIDE), atol=1e-5)
    features_tf = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(features_tf)
        total = tf.reduce_sum(layer(features_tf, points))
    gradient = tape.gradient(total, features_tf).numpy()
    assert gradient.sum() == pytest.approx(2 * 7 * 5, rel=1e-4)  # bilinear weights sum to one


def test_sip_patch_centre_equals_point_sampling():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    points = rng.uniform(4, 28, size=(1, 4, 2)).astype(np.float32)
    patch = ShapeIndexedPooling(stride=STRIDE, patch=3)(features, points).numpy().reshape(1, 4, 9, 3)
    centre = ShapeIndexedPooling(stride=STRIDE)(features, points).numpy()
    np.testing.assert_allclose(patch[:, :, 4], centre, atol=1e-5)


@pytest.mark.parametrize("subpixel", [False, True])
def test_heatmap_decoder_finds_peaks(subpixel):
    size, num = 16, 3
    truth = np.array([[2.0, 3.0], [10.0, 7.0], [13.0, 12.0]], np.float32)   # in cells, away from the border
    xs, ys = np.meshgrid(np.arange(size), np.arange(size))
    logits = np.stack([-((xs - x) ** 2 + (ys - y) ** 2) for x, y in truth], -1)[None].astype(np.float32)
    points, confidence, probs = HeatmapDecoder(stride=STRIDE, subpixel=subpixel)(logits)
    expected = (truth + 0.5) * STRIDE - 0.5
    np.testing.assert_allclose(points.numpy()[0], expected, atol=0.6 if subpixel else 1e-5)
    assert confidence.shape == (1, num) and np.all(confidence.numpy() > 0.1)
    assert probs.shape == (1, num, size, size)
    np.testing.assert_allclose(probs.numpy().sum((2, 3)), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs.numpy().max((2, 3)), confidence.numpy(), atol=1e-6)


def test_heatmap_decoder_window_at_the_border_matches_a_masked_mean():
    # Peaks on the map's corner and edge: the window leaves the map and only cells inside count.
    rng = np.random.default_rng(3)
    size, window = 8, 2
    logits = rng.normal(0, 1, (2, size, size, 2)).astype(np.float32)
    logits[0, 0, 0, 0] = logits[0, 7, 3, 1] = logits[1, 4, 7, 0] = logits[1, 1, 6, 1] = 9.0
    points, _, _ = HeatmapDecoder(stride=1, subpixel=True, window=window)(logits)
    for b in range(2):
        for l in range(2):
            probs = np.exp(logits[b, :, :, l] - logits[b, :, :, l].max())
            probs /= probs.sum()
            y, x = np.unravel_index(np.argmax(logits[b, :, :, l]), (size, size))
            ys, xs = np.mgrid[:size, :size]
            near = (np.abs(xs - x) <= window) & (np.abs(ys - y) <= window)
            w = probs * near
            expected = [(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()]
            np.testing.assert_allclose(points.numpy()[b, l], expected, atol=1e-5)


def test_own_channel_pooling_equals_the_own_channel_of_full_pooling():
    rng = np.random.default_rng(5)
    num, size = 4, 8
    maps = rng.normal(0, 1, (2, size, size, num)).astype(np.float32)
    points = rng.uniform(-2, 4 * size + 2, (2, num, 2)).astype(np.float32)   # some outside the map
    full = ShapeIndexedPooling(stride=4, patch=3)(maps, points).numpy().reshape(2, num, 9, num)
    own = ShapeIndexedPooling(stride=4, patch=3, own_channel=True)(np.transpose(maps, [0, 3, 1, 2]), points)
    np.testing.assert_allclose(own.numpy(), full[:, np.arange(num), :, np.arange(num)].transpose(1, 0, 2),
                               atol=1e-6)


def test_heatmap_decoder_subpixel_between_cells():
    xs, ys = np.meshgrid(np.arange(16), np.arange(16))
    logits = (-((xs - 6.5) ** 2 + (ys - 9.25) ** 2) / 2.0)[None, ..., None].astype(np.float32)
    points, _, _ = HeatmapDecoder(stride=1, subpixel=True)(logits)
    np.testing.assert_allclose(points.numpy()[0, 0], [6.5, 9.25], atol=0.15)


def _bank_layer(shapes, bank_size=4, pairs=24, threshold=3.0):
    bank = build_shape_bank(shapes, bank_size, pairs, seed=0)
    layer = RobustShapeInit(shapes.shape[1], bank_size, len(bank.pairs), inlier_threshold=threshold)
    layer.set_bank(bank.shapes, bank.mean_shape, bank.pairs)
    return layer


def _face_like_shapes(count, rng):
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    base = np.stack([np.cos(angles) * (20 + 4 * np.sin(3 * angles)), np.sin(angles) * 26], 1) + 64
    return (base + rng.normal(0, 1.0, size=(count, 68, 2))).astype(np.float32)


def test_robust_init_survives_30_percent_gross_outliers():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(60, rng)
    layer = _bank_layer(shapes)
    clean = shapes[:4] * 1.1 - 6.0                               # scaled and shifted faces
    corrupted = clean.copy()
    for face in corrupted:
        bad = rng.choice(68, size=int(0.3 * 68), replace=False)
        face[bad] += rng.uniform(25, 40, size=(len(bad), 2)) * rng.choice([-1, 1], size=(len(bad), 2))
    start_clean, _ = layer(clean)
    start_robust, _ = layer(corrupted)
    start_ls, _ = layer(corrupted, mode="least_squares")
    err = lambda s: float(np.mean(np.linalg.norm(s.numpy() - start_clean.numpy(), axis=-1)))
    assert err(start_robust) < 1.5, err(start_robust)
    assert err(start_ls) > 3 * err(start_robust) and err(start_ls) > 3.0


def test_robust_init_modes_and_degenerate_detection():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(20, rng)
    layer = _bank_layer(shapes)
    collapsed = np.full((2, 68, 2), 30.0, np.float32)           # all points decoded to one spot
    for mode in ("robust", "robust_inliers", "least_squares", "mean", "random", "detected"):
        start, index = layer(collapsed, mode=mode)
        assert np.isfinite(start.numpy()).all(), mode
        assert start.shape == (2, 68, 2)
    with pytest.raises(ValueError, match="init mode"):
        layer(collapsed, mode="bogus")


def test_attentive_refiner_outputs_and_zero_update_at_start():
    rng = np.random.default_rng(0)
    refiner = AttentiveRefiner(num_landmarks=5, steps=3, lstm_units=8, sip_channels=4, stride=STRIDE)
    features = rng.normal(size=(2, 8, 8, 6)).astype(np.float32)
    start = rng.uniform(4, 28, size=(2, 5, 2)).astype(np.float32)
    out = refiner(features, start, training=False)
    assert out["shapes"].shape == (2, 4, 5, 2) and out["centres"].shape == (2, 3)
    # The regression head starts at zero: an untrained refiner leaves the shape where it starts.
    np.testing.assert_allclose(out["shapes"].numpy()[:, -1], start, atol=1e-5)
    gammas = out["gammas"].numpy()
    assert np.all(gammas <= 1.0 + 1e-6) and np.allclose(gammas.max(-1), 1.0)


@pytest.mark.parametrize("layer", [
    ShapeIndexedPooling(stride=8, patch=3),
    HeatmapDecoder(stride=2, subpixel=False, window=1),
    RobustShapeInit(5, 3, 4, inlier_threshold=2.5, refine_iterations=1),
    AttentiveRefiner(5, steps=2, lstm_units=6, sip_channels=3, sip_patch=3, stride=2, alpha=0.3,
                     kappa=0.7, seed=4),
], ids=lambda layer: type(layer).__name__)
def test_layer_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
