"""Decodes conv8 heatmaps to the detected shape S_d: a global soft-argmax, or an argmax refined locally."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers.coordinates import cell_grid, cells_to_pixels, flatten_heatmaps

DECODE_MODES = ("local", "global")


@keras.saving.register_keras_serializable(package="rar_keras")
class HeatmapDecoder(keras.layers.Layer):
    """Each landmark's position from its spatial softmax, in crop pixels, with its peak probability
    as confidence.

    "local": the argmax, with `subpixel` refined to the probability-weighted mean of the cells
    within `window` cells of it (a gather). "global": the expectation of the cell coordinates under
    the softmax of the logits divided by `temperature` (a soft-argmax over the whole map): one
    matrix product, no argmax or gather, so fewer and cheaper ops in the exported file. Both use
    builtin TFLite ops only. Also returns the probabilities (temperature 1), channel-major
    (B, L, H, W), for the heads' heatmap patches.

    Args:
        stride: crop pixels per heatmap cell.
        subpixel: "local" mode: refine the argmax with the local expectation.
        window: "local" mode: half-size of the local window, in cells.
        mode: "local" or "global".
        temperature: "global" mode: divides the logits before the softmax (below 1 sharpens it).
    """

    def __init__(self, stride: int = 4, subpixel: bool = True, window: int = 2, mode: str = "local",
                 temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if mode not in DECODE_MODES:
            raise ValueError(f"decode mode must be one of {DECODE_MODES}, got {mode!r}")
        if not temperature > 0:
            raise ValueError(f"decode temperature must be positive, got {temperature!r}")
        self.stride, self.subpixel, self.window = stride, subpixel, window
        self.mode, self.temperature = mode, float(temperature)

    def call(self, heatmap_logits):
        """Returns S_d (B, L, 2) in crop pixels, confidence (B, L) and the probabilities (B, L, H, W)."""
        _, height, width, num = heatmap_logits.shape
        logits = flatten_heatmaps(heatmap_logits)
        probs = tf.nn.softmax(logits, axis=-1)                       # (B, L, HW)
        confidence = tf.reduce_max(probs, axis=-1)
        if self.mode == "global":
            cells = self._global_expectation(logits, probs, height, width)
        else:
            best = tf.argmax(logits, axis=-1, output_type=tf.int32)      # (B, L)
            best_x, best_y = best % width, best // width
            if self.subpixel:
                x, y = self._local_expectation(probs, best_x, best_y, height, width)
            else:
                x, y = tf.cast(best_x, tf.float32), tf.cast(best_y, tf.float32)
            cells = tf.stack([x, y], axis=-1)
        return cells_to_pixels(cells, self.stride), confidence, tf.reshape(probs, [-1, num, height, width])

    def _global_expectation(self, logits, probs, height, width):
        """(B, L, 2) expected cell (x, y) under the softmax at `temperature` (one matrix product)."""
        sharp = probs if self.temperature == 1.0 else tf.nn.softmax(logits / self.temperature, axis=-1)
        grid_x, grid_y = cell_grid(height, width)
        return tf.matmul(sharp, tf.stack([grid_x, grid_y], axis=-1))

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
                "window": self.window, "mode": self.mode, "temperature": self.temperature}
