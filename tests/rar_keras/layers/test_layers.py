"""The custom layers against NumPy references, and their config round-trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rar_keras.layers import AttentiveRefiner, HeatmapDecoder, RobustShapeInit, ShapeIndexedPooling, VisibilityHead
from rar_keras.layers import similarity
from rar_keras.layers.robust_init import INIT_MODES
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


def test_sip_on_a_map_wider_than_high_matches_numpy():
    """x indexes the width and y the height (a square map would hide a swap)."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2, 5, 11, 3)).astype(np.float32)
    points = np.stack([rng.uniform(-6, 50, size=(2, 9)), rng.uniform(-6, 26, size=(2, 9))], -1).astype(np.float32)
    sampled = ShapeIndexedPooling(stride=STRIDE)(features, points).numpy()
    np.testing.assert_allclose(sampled, numpy_bilinear(features, points, STRIDE), atol=1e-5)


def test_sip_patch_centre_equals_point_sampling():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    points = rng.uniform(4, 28, size=(1, 4, 2)).astype(np.float32)
    patch = ShapeIndexedPooling(stride=STRIDE, patch=3)(features, points).numpy().reshape(1, 4, 9, 3)
    centre = ShapeIndexedPooling(stride=STRIDE)(features, points).numpy()
    np.testing.assert_allclose(patch[:, :, 4], centre, atol=1e-5)


@pytest.mark.parametrize("patch", [2, 3, 5])
def test_sip_patch_matches_numpy_at_every_cell_of_the_patch(patch):
    """Each patch cell is the NumPy bilinear sample at the landmark plus that cell's offset, the
    border clamped per cell (landmarks near and outside the edges of a non-square map)."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2, 6, 9, 4)).astype(np.float32)
    points = np.stack([rng.uniform(-10, 46, size=(2, 12)), rng.uniform(-10, 34, size=(2, 12))],
                      -1).astype(np.float32)
    sampled = ShapeIndexedPooling(stride=STRIDE, patch=patch)(features, points).numpy()
    sampled = sampled.reshape(2, 12, patch, patch, 4)
    half = (patch - 1) / 2
    for iy in range(patch):
        for ix in range(patch):
            offset = np.array([ix - half, iy - half], np.float32) * STRIDE
            np.testing.assert_allclose(sampled[:, :, iy, ix], numpy_bilinear(features, points + offset, STRIDE),
                                       atol=1e-5)


@pytest.mark.parametrize("patch", [1, 3])
def test_sip_far_off_and_infinite_points_sample_the_border(patch):
    features = np.random.default_rng(8).normal(size=(1, 5, 7, 2)).astype(np.float32)
    points = np.array([[[1e10, 3.0], [-1e10, 9.0], [np.inf, -np.inf], [10.0, 1e12]]], np.float32)
    sampled = ShapeIndexedPooling(stride=STRIDE, patch=patch)(features, points).numpy()
    sampled = sampled.reshape(1, 4, patch, patch, 2)
    near = np.clip(points, -1e3, 1e3)     # as far beyond the same edges
    half = (patch - 1) / 2
    assert np.all(np.isfinite(sampled))
    for iy in range(patch):
        for ix in range(patch):
            offset = np.array([ix - half, iy - half], np.float32) * STRIDE
            np.testing.assert_allclose(sampled[:, :, iy, ix], numpy_bilinear(features, near + offset, STRIDE),
                                       atol=1e-5)


@pytest.mark.parametrize("patch", [1, 4, 5])
def test_sip_a_nan_point_gives_nan_samples_and_leaves_the_others_alone(patch):
    rng = np.random.default_rng(11)
    features = rng.normal(size=(1, 5, 7, 2)).astype(np.float32)
    points = np.array([[[np.nan, 3.0], [9.0, np.nan], [10.0, 6.0]]], np.float32)
    layer = ShapeIndexedPooling(stride=STRIDE, patch=patch)
    sampled = layer(features, points).numpy()
    assert np.all(np.isnan(sampled[:, :2]))
    np.testing.assert_allclose(sampled[:, 2:], layer(features, points[:, 2:]).numpy(), atol=1e-6)
    maps = rng.normal(size=(1, 3, 5, 7)).astype(np.float32)
    own = ShapeIndexedPooling(stride=STRIDE, patch=patch, own_channel=True)(maps, points).numpy()
    assert np.all(np.isnan(own[:, :2])) and np.all(np.isfinite(own[:, 2]))


@pytest.mark.parametrize("patch", [0, -1, 2.0, True])
def test_sip_refuses_a_patch_that_is_not_a_positive_integer(patch):
    with pytest.raises(ValueError, match="patch must be a positive integer"):
        ShapeIndexedPooling(stride=STRIDE, patch=patch)


@pytest.mark.parametrize("heatmap_patch", [3, 4])
def test_visibility_head_reads_both_maps_at_the_points(heatmap_patch):
    """The head's logits are its network on what each sampler gives on its own, for odd and even
    heatmap patches."""
    rng = np.random.default_rng(10)
    num = 5
    features = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    probabilities = rng.uniform(size=(2, num, 6, 6)).astype(np.float32)
    points = rng.uniform(-3, 26, size=(2, num, 2)).astype(np.float32)
    head = VisibilityHead(num, stride=STRIDE, heatmap_patch=heatmap_patch, hidden_units=4, embedding_size=2)
    logits = head(features, probabilities, points).numpy()
    embedding = np.broadcast_to(head.embedding.numpy()[None], (2, num, 2))
    inputs = np.concatenate([ShapeIndexedPooling(STRIDE)(features, points).numpy(),
                             ShapeIndexedPooling(STRIDE, heatmap_patch, own_channel=True)(probabilities, points).numpy()
                             * heatmap_patch ** 2, embedding], -1)
    np.testing.assert_allclose(logits, head.score(head.hidden(inputs)).numpy()[..., 0], atol=1e-5)


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


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_heatmap_decoder_global_mode_is_the_soft_argmax_of_numpy(temperature):
    rng = np.random.default_rng(11)
    height, width, num = 6, 9, 3
    logits = rng.normal(0, 2, (2, height, width, num)).astype(np.float32)
    points, confidence, probs = HeatmapDecoder(stride=STRIDE, mode="global", temperature=temperature)(logits)
    ys, xs = np.mgrid[:height, :width]
    for b in range(2):
        for l in range(num):
            sharp = np.exp((logits[b, :, :, l] - logits[b, :, :, l].max()) / temperature)
            sharp /= sharp.sum()
            cell = [(sharp * xs).sum(), (sharp * ys).sum()]
            np.testing.assert_allclose(points.numpy()[b, l], (np.array(cell) + 0.5) * STRIDE - 0.5, atol=1e-4)
    # The probabilities and the confidence the heads read stay those of temperature 1, as in "local".
    _, local_confidence, local_probs = HeatmapDecoder(stride=STRIDE)(logits)
    np.testing.assert_allclose(probs.numpy(), local_probs.numpy(), atol=1e-7)
    np.testing.assert_allclose(confidence.numpy(), local_confidence.numpy(), atol=1e-7)


@pytest.mark.parametrize("arguments, message", [({"mode": "peak"}, "decode mode"),
                                                ({"mode": "global", "temperature": 0.0}, "temperature")])
def test_heatmap_decoder_refuses_an_unknown_mode_or_temperature(arguments, message):
    with pytest.raises(ValueError, match=message):
        HeatmapDecoder(**arguments)


def _bank_layer(shapes, bank_size=4, components=6, robust_scale=0.1):
    bank = build_shape_bank(shapes, bank_size, components, seed=0)
    layer = RobustShapeInit(shapes.shape[1], bank_size, components, robust_scale=robust_scale)
    layer.set_bank(bank)
    return layer


def _face_like_shapes(count, rng):
    """Shapes with three modes of variation (width, a smile-like wave, a tilt of the top), plus noise."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    base = np.stack([np.cos(angles) * 20, np.sin(angles) * 26], 1)
    modes = np.stack([np.stack([np.cos(angles), 0 * angles], 1), np.stack([0 * angles, np.sin(3 * angles)], 1),
                      np.stack([np.sin(angles) * (angles < np.pi), 0 * angles], 1)])
    coefficients = rng.normal(0, 3, size=(count, 3))
    return (base + np.einsum("nk,kld->nld", coefficients, modes) + 64
            + rng.normal(0, 0.3, size=(count, 68, 2))).astype(np.float32)


def _similar(shapes, rng):
    """The shapes under a random rotation, scale and shift each."""
    out = []
    for shape in shapes:
        angle, scale, shift = rng.uniform(-0.4, 0.4), rng.uniform(0.8, 1.2), rng.uniform(-10, 10, 2)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        out.append((shape - 64) @ rotation.T * scale + 64 + shift)
    return np.stack(out).astype(np.float32)


def test_similarity_inverse_undoes_the_transform():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3, 10, 2)).astype(np.float32)
    a_re, a_im, t = (tf.constant(rng.normal(size=3), tf.float32), tf.constant(rng.normal(size=3), tf.float32),
                     tf.constant(rng.normal(size=(3, 2)), tf.float32))
    moved = similarity.transform(points, a_re, a_im, t)
    np.testing.assert_allclose(similarity.inverse_transform(moved, a_re, a_im, t).numpy(), points, atol=1e-4)


def test_the_matrix_forms_of_the_similarity_equal_the_elementwise_ones():
    rng = np.random.default_rng(1)
    src = tf.constant(rng.normal(size=(3, 4, 10, 2)), tf.float32)
    a_re, a_im = tf.constant(rng.normal(size=(3, 4)), tf.float32), tf.constant(rng.normal(size=(3, 4)), tf.float32)
    shift = tf.constant(rng.normal(size=(3, 4, 2)), tf.float32)
    np.testing.assert_allclose(similarity.transform_by_matrix(src, a_re, a_im, shift).numpy(),
                               similarity.transform(src, a_re, a_im, shift).numpy(), atol=1e-5)
    dst = similarity.transform(src, a_re, a_im, shift) + tf.constant(rng.normal(0, 0.1, size=(3, 4, 10, 2)), tf.float32)
    weights = tf.constant(rng.uniform(size=(3, 4, 10)), tf.float32)
    for by_moments, plain in zip(similarity.weighted_fit_by_moments(src, dst, weights),
                                 similarity.weighted_fit(src, dst, weights)):
        np.testing.assert_allclose(by_moments.numpy(), plain.numpy(), atol=1e-5)
    np.testing.assert_allclose(similarity.inverse_transform(dst, a_re, a_im, shift, by_matrix=True).numpy(),
                               similarity.inverse_transform(dst, a_re, a_im, shift).numpy(), atol=1e-4)


def test_shape_basis_is_orthonormal_and_spans_the_training_shapes():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(80, rng)
    bank = build_shape_bank(shapes, 4, 6, seed=0)
    basis = bank.basis.reshape(6, -1)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-5)
    moved = _similar(shapes[:5], rng)
    fitted, weights = _bank_layer(shapes)(moved)
    assert float(np.linalg.norm(fitted.numpy() - moved, axis=-1).mean()) < 0.6   # the noise is 0.3 px a coordinate
    assert float(weights.numpy().min()) > 0.5


def test_robust_fit_reproduces_clean_faces_and_ignores_gross_outliers():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(80, rng)
    layer = _bank_layer(shapes)
    clean = _similar(_face_like_shapes(6, rng), rng)              # new faces of the same family
    fitted_clean, _ = layer(clean)
    assert float(np.linalg.norm(fitted_clean.numpy() - clean, axis=-1).mean()) < 1.0
    corrupted = clean.copy()
    bad = np.zeros(clean.shape[:2], bool)
    for face, wrong in zip(corrupted, bad):
        index = rng.choice(68, size=int(0.3 * 68), replace=False)
        wrong[index] = True
        face[index] += rng.uniform(20, 35, size=(len(index), 2)) * rng.choice([-1, 1], size=(len(index), 2))
    robust, weights = layer(corrupted)
    plain, _ = layer(corrupted, tf.ones(clean.shape[:2]), mode="robust")
    error = lambda s: float(np.linalg.norm(s - clean, axis=-1).mean())      # noqa: E731
    assert error(robust.numpy()) < 2.0, error(robust.numpy())
    assert float(weights.numpy()[bad].mean()) < 0.1 < float(weights.numpy()[~bad].mean())
    # A fit whose residual scale admits everything is a plain least-squares fit: dragged by the outliers.
    permissive = _bank_layer(shapes, robust_scale=100.0)
    assert error(permissive(corrupted)[0].numpy()) > 3 * error(robust.numpy())
    # Points with zero prior weight (predicted occluded) do not pull the fit either.
    occluded, _ = permissive(corrupted, tf.constant((~bad).astype(np.float32)))
    assert error(occluded.numpy()) < 2.0


def test_robust_init_modes_and_degenerate_detection():
    rng = np.random.default_rng(0)
    shapes = _face_like_shapes(20, rng)
    layer = _bank_layer(shapes)
    collapsed = np.full((2, 68, 2), 30.0, np.float32)           # all points decoded to one spot
    for mode in INIT_MODES:
        start, weights = layer(collapsed, mode=mode)
        assert np.isfinite(start.numpy()).all() and np.isfinite(weights.numpy()).all(), mode
        assert start.shape == (2, 68, 2) and weights.shape == (2, 68)
    np.testing.assert_array_equal(layer(collapsed, mode="detected")[0].numpy(), collapsed)
    with pytest.raises(ValueError, match="init mode"):
        layer(collapsed, mode="bogus")


def _refiner_inputs(rng, num=5):
    features = rng.normal(size=(2, 8, 8, 6)).astype(np.float32)
    fine = rng.normal(size=(2, 16, 16, 4)).astype(np.float32)
    probabilities = rng.uniform(size=(2, num, 8, 8)).astype(np.float32)
    start = rng.uniform(4, 28, size=(2, num, 2)).astype(np.float32)
    visibility = rng.uniform(size=(2, num)).astype(np.float32)
    return features, fine, probabilities, start, visibility


def test_attentive_refiner_outputs_and_zero_update_at_start():
    rng = np.random.default_rng(0)
    refiner = AttentiveRefiner(num_landmarks=5, steps=3, lstm_units=8, channels=6, context_channels=3,
                               hidden_units=8, stride=STRIDE, fine_stride=STRIDE // 2)
    features, fine, probabilities, start, visibility = _refiner_inputs(rng)
    out = refiner(features, fine, probabilities, start, visibility, training=False)
    assert out["shapes"].shape == (2, 4, 5, 2) and out["centres"].shape == (2, 3)
    assert out["values"].shape == (2, 3) and out["logits"].shape == (2, 3, 5)
    # The update head starts at zero: an untrained refiner leaves the shape where it starts.
    np.testing.assert_allclose(out["shapes"].numpy()[:, -1], start, atol=1e-5)
    gammas = out["gammas"].numpy()
    assert np.all(gammas <= 1.0 + 1e-6) and np.allclose(gammas.max(-1), 1.0)


def test_attention_policy_gradient_stays_out_of_the_features():
    """The attention scores see the per-landmark features through a stop-gradient."""
    rng = np.random.default_rng(0)
    refiner = AttentiveRefiner(num_landmarks=5, steps=2, lstm_units=8, channels=6, context_channels=3,
                               hidden_units=8, stride=STRIDE, fine_stride=STRIDE // 2)
    inputs = [tf.constant(x) for x in _refiner_inputs(rng)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs[0])
        out = refiner(*inputs, training=False)
        scores = tf.reduce_sum(out["logits"])
    assert tape.gradient(scores, inputs[0]) is None
    assert tape.gradient(scores, refiner.encode.kernel) is None
    assert tape.gradient(scores, refiner.score.kernel) is not None


@pytest.mark.parametrize("layer", [
    ShapeIndexedPooling(stride=8, patch=3),
    HeatmapDecoder(stride=2, subpixel=False, window=1),
    HeatmapDecoder(stride=4, mode="global", temperature=0.5),
    RobustShapeInit(5, 3, 4, iterations=2, landweber_steps=2, robust_scale=0.2, shrinkage=0.1),
    AttentiveRefiner(5, steps=2, lstm_units=6, channels=4, context_channels=2, hidden_units=5, stride=2,
                     fine_stride=1, fine_patch=1, heatmap_patch=3, alpha=0.3, kappa=0.7, attention_radius=0.4,
                     seed=4),
    VisibilityHead(5, stride=2, heatmap_patch=3, hidden_units=7, embedding_size=2),
], ids=lambda layer: type(layer).__name__)
def test_layer_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()
