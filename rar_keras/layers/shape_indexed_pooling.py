"""Shape-indexed pooling (SIP): deep features sampled bilinearly at each landmark."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers.coordinates import pixels_to_cells


@keras.saving.register_keras_serializable(package="rar_keras")
class ShapeIndexedPooling(keras.layers.Layer):
    """Samples features (B, H, W, C) at landmarks (B, L, 2) given in crop pixels.

    Bilinear interpolation from the four neighbouring cells via `tf.gather`
    with `batch_dims=1` (builtin TFLite ops; gradients reach the features).
    Points outside the map are clamped to its border.

    Args:
        stride: crop pixels per feature cell.
        patch: side of the square patch of cells sampled around each landmark
            (1 samples the landmark only); the patch is flattened into channels.
        own_channel: landmark l samples channel l only, e.g. its own heatmap; the features are then
            channel-major (B, L, H, W). L times less gathering than sampling every channel.

    Returns:
        (B, L, patch * patch * C) features, or (B, L, patch * patch) with `own_channel`.
    """

    def __init__(self, stride: int = 4, patch: int = 1, own_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.patch, self.own_channel = stride, patch, own_channel

    def _offsets(self):
        half = (self.patch - 1) / 2.0
        grid = np.stack(np.meshgrid(np.arange(self.patch) - half, np.arange(self.patch) - half,
                                    indexing="xy"), -1).reshape(-1, 2)
        return tf.constant(grid, tf.float32)                         # (P*P, 2) in cells

    def call(self, features, points):
        if self.own_channel:
            _, channels, height, width = features.shape
        else:
            _, height, width, channels = features.shape
        num = points.shape[1]
        cells = pixels_to_cells(points, self.stride)                 # (B, L, 2)
        cells = tf.reshape(cells[:, :, None, :] + self._offsets(), [-1, num * self.patch ** 2, 2])
        x = tf.clip_by_value(cells[..., 0], 0.0, width - 1.0)
        y = tf.clip_by_value(cells[..., 1], 0.0, height - 1.0)
        x0 = tf.minimum(tf.floor(x), width - 2.0)
        y0 = tf.minimum(tf.floor(y), height - 2.0)
        fx, fy = (x - x0)[..., None], (y - y0)[..., None]
        x0i, y0i = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
        if self.own_channel:
            if channels != num:
                raise ValueError(f"own_channel sampling needs one channel per landmark: got {channels} "
                                 f"channels for {num} landmarks")
            flat = tf.reshape(features, [-1, num * height * width, 1])
            base = tf.repeat(tf.range(num) * (height * width), self.patch ** 2)[None]
            channels = 1
        else:
            flat = tf.reshape(features, [-1, height * width, channels])
            base = 0

        def corner(dy, dx):
            return tf.gather(flat, base + (y0i + dy) * width + (x0i + dx), axis=1, batch_dims=1)

        top = corner(0, 0) * (1.0 - fx) + corner(0, 1) * fx
        bottom = corner(1, 0) * (1.0 - fx) + corner(1, 1) * fx
        sampled = top * (1.0 - fy) + bottom * fy                     # (B, L*P*P, C)
        return tf.reshape(sampled, [-1, num, self.patch ** 2 * channels])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "patch": self.patch, "own_channel": self.own_channel}
