"""Decodes conv8 heatmaps to the detected shape S_d: argmax, optionally refined to sub-pixel."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers.coordinates import cells_to_pixels, flatten_heatmaps


@keras.saving.register_keras_serializable(package="rar_keras")
class HeatmapDecoder(keras.layers.Layer):
    """Argmax of each landmark's spatial softmax, in crop pixels, with its probability as confidence.

    With `subpixel`, the position is the probability-weighted mean of the cells
    within `window` cells of the argmax (builtin TFLite ops only). Also returns the
    probabilities, channel-major (B, L, H, W), for the refiner's heatmap patches.

    Args:
        stride: crop pixels per heatmap cell.
        subpixel: refine the argmax with the local expectation.
        window: half-size of the local window, in cells.
    """

    def __init__(self, stride: int = 4, subpixel: bool = True, window: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.subpixel, self.window = stride, subpixel, window

    def call(self, heatmap_logits):
        """Returns S_d (B, L, 2) in crop pixels, confidence (B, L) and the probabilities (B, L, H, W)."""
        _, height, width, num = heatmap_logits.shape
        logits = flatten_heatmaps(heatmap_logits)
        probs = tf.nn.softmax(logits, axis=-1)                       # (B, L, HW)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)      # (B, L)
        best_x, best_y = best % width, best // width
        confidence = tf.reduce_max(probs, axis=-1)
        if self.subpixel:
            x, y = self._local_expectation(probs, best_x, best_y, height, width)
        else:
            x, y = tf.cast(best_x, tf.float32), tf.cast(best_y, tf.float32)
        points = cells_to_pixels(tf.stack([x, y], axis=-1), self.stride)
        return points, confidence, tf.reshape(probs, [-1, num, height, width])

    def _local_expectation(self, probs, best_x, best_y, height, width):
        """Probability-weighted mean of the cells within `window` of the argmax (a gather, not a mask)."""
        num = probs.shape[1]
        side = np.arange(-self.window, self.window + 1)
        dx, dy = (tf.constant(v.reshape(-1), tf.int32) for v in np.meshgrid(side, side, indexing="xy"))
        cell_x, cell_y = best_x[..., None] + dx, best_y[..., None] + dy      # (B, L, P)
        inside = tf.cast((cell_x >= 0) & (cell_x < width) & (cell_y >= 0) & (cell_y < height), probs.dtype)
        index = (tf.clip_by_value(cell_y, 0, height - 1) * width + tf.clip_by_value(cell_x, 0, width - 1)
                 + tf.range(num)[:, None] * (height * width))
        flat = tf.reshape(probs, [-1, num * height * width])
        weights = tf.gather(flat, tf.reshape(index, [-1, num * side.size ** 2]), axis=1, batch_dims=1)
        weights = tf.reshape(weights, tf.shape(inside)) * inside
        total = tf.maximum(tf.reduce_sum(weights, -1), 1e-12)
        x = tf.reduce_sum(weights * tf.cast(cell_x, probs.dtype), -1) / total
        y = tf.reduce_sum(weights * tf.cast(cell_y, probs.dtype), -1) / total
        return x, y

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "subpixel": self.subpixel,
                "window": self.window}
