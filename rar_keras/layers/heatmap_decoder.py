"""Decodes conv8 heatmaps to the detected shape S_d: argmax, optionally refined to sub-pixel."""

from __future__ import annotations

import keras
import tensorflow as tf

from rar_keras.layers.coordinates import cell_grid, cells_to_pixels


@keras.saving.register_keras_serializable(package="rar_keras")
class HeatmapDecoder(keras.layers.Layer):
    """Argmax of each landmark's spatial softmax, in crop pixels, with its probability as confidence.

    With `subpixel`, the position is the probability-weighted mean of the cells
    within `window` cells of the argmax (builtin TFLite ops only).

    Args:
        stride: crop pixels per heatmap cell.
        subpixel: refine the argmax with the local expectation.
        window: half-size of the local window, in cells.
    """

    def __init__(self, stride: int = 4, subpixel: bool = True, window: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.subpixel, self.window = stride, subpixel, window

    def call(self, heatmap_logits):
        _, height, width, num = heatmap_logits.shape
        logits = tf.transpose(tf.reshape(heatmap_logits, [-1, height * width, num]), [0, 2, 1])
        probs = tf.nn.softmax(logits, axis=-1)                       # (B, L, HW)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)      # (B, L)
        grid_x, grid_y = cell_grid(height, width)
        best_x = tf.cast(best % width, tf.float32)
        best_y = tf.cast(best // width, tf.float32)
        confidence = tf.reduce_max(probs, axis=-1)
        if self.subpixel:
            near = tf.logical_and(tf.abs(grid_x - best_x[..., None]) <= self.window,
                                  tf.abs(grid_y - best_y[..., None]) <= self.window)
            weights = probs * tf.cast(near, probs.dtype)
            total = tf.maximum(tf.reduce_sum(weights, -1), 1e-12)
            best_x = tf.reduce_sum(weights * grid_x, -1) / total
            best_y = tf.reduce_sum(weights * grid_y, -1) / total
        points = cells_to_pixels(tf.stack([best_x, best_y], axis=-1), self.stride)
        return points, confidence

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "subpixel": self.subpixel,
                "window": self.window}
