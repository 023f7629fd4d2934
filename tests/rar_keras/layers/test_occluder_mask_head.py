"""OccluderMaskHead: the covered pixels against a NumPy bilinear upsampling, the painting, settings."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rar_keras.layers.occluder_mask_head import OccluderMaskHead


def _bilinear_numpy(grid: np.ndarray, size: int) -> np.ndarray:
    """(h, w) -> (size, size) bilinear with half-pixel centres, edges clamped (written independently)."""
    h, w = grid.shape
    out = np.zeros((size, size))
    for y in range(size):
        sy = min(max((y + 0.5) * h / size - 0.5, 0.0), h - 1.0)
        y0 = int(np.floor(sy)); y1 = min(y0 + 1, h - 1); fy = sy - y0
        for x in range(size):
            sx = min(max((x + 0.5) * w / size - 0.5, 0.0), w - 1.0)
            x0 = int(np.floor(sx)); x1 = min(x0 + 1, w - 1); fx = sx - x0
            out[y, x] = ((1 - fy) * ((1 - fx) * grid[y0, x0] + fx * grid[y0, x1])
                         + fy * ((1 - fx) * grid[y1, x0] + fx * grid[y1, x1]))
    return out


def test_the_painted_pixels_are_those_whose_upsampled_probability_passes_the_threshold():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (2, 6, 6, 1)).astype(np.float32)
    images = rng.uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)
    head = OccluderMaskHead(stride=4, fill=128.0, threshold=0.6)
    painted = head.paint(tf.constant(images), tf.constant(logits)).numpy()
    for face in range(2):
        probability = _bilinear_numpy(1.0 / (1.0 + np.exp(-logits[face, ..., 0].astype(np.float64))), 24)
        clear = np.abs(probability - 0.6) > 1e-4               # leave float ties at the threshold out
        covered = probability > 0.6
        assert 0.1 < covered.mean() < 0.9
        np.testing.assert_array_equal(painted[face][covered & clear], 128.0)
        np.testing.assert_array_equal(painted[face][~covered & clear], images[face][~covered & clear])


def test_the_head_reads_both_feature_maps_on_the_heatmap_grid_and_round_trips():
    head = OccluderMaskHead(channels=8, stride=4, fine_stride=2, threshold=0.4, fill=100.0, dilations=(1, 3))
    features = tf.random.stateless_normal([2, 5, 5, 6], [1, 2])
    fine = tf.random.stateless_normal([2, 10, 10, 3], [3, 4])
    logits = head(features, fine)
    assert logits.shape == (2, 5, 5, 1)
    # the fine features count: changing them changes the logits
    assert float(tf.reduce_max(tf.abs(head(features, fine * 2.0) - logits))) > 1e-4
    copy = OccluderMaskHead.from_config(head.get_config())
    copy(features, fine)
    copy.set_weights(head.get_weights())
    np.testing.assert_array_equal(copy(features, fine).numpy(), logits.numpy())
    assert (copy.threshold, copy.fill, copy.channels, copy.dilations) == (0.4, 100.0, 8, (1, 3))
    assert [convolution.dilation_rate for convolution in copy.convolutions] == [(1, 1), (3, 3)]
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
    assert isinstance(restored, OccluderMaskHead) and restored.get_config() == head.get_config()


@pytest.mark.parametrize("settings,message", [({"threshold": 1.0}, "threshold"), ({"threshold": 0.0}, "threshold"),
                                              ({"fill": 300.0}, "fill"), ({"stride": 4, "fine_stride": 3}, "multiple"),
                                              ({"dilations": ()}, "dilations"), ({"dilations": (1, 0)}, "dilations")])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        OccluderMaskHead(**settings)
