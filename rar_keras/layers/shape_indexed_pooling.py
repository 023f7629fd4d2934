"""Shape-indexed pooling (SIP): deep features sampled bilinearly at each landmark."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers.coordinates import pixels_to_cells


@keras.saving.register_keras_serializable(package="rar_keras")
class ShapeIndexedPooling(keras.layers.Layer):
    """Samples features (B, H, W, C) at landmarks (B, L, 2) given in crop pixels.

    Bilinear interpolation via `tf.gather` with `batch_dims=1` (builtin TFLite ops;
    gradients reach the features). Points outside the map take the value at its border
    (clamp-to-edge), however far off they are. The cells of a patch lie one cell apart,
    so they all share the same fractional offset: each landmark gathers one
    (patch + 1)^2 block of cells and interpolates it along x, then y, and the
    coordinate arithmetic runs once per landmark, not once per patch cell.

    Args:
        stride: crop pixels per feature cell.
        patch: side of the square patch of cells sampled around each landmark
            (1 samples the landmark only); the patch is flattened into channels,
            row-major (y, then x, then the channel).
        own_channel: landmark l samples channel l only, e.g. its own heatmap; the features are then
            channel-major (B, L, H, W). L times less gathering than sampling every channel.

    Returns:
        (B, L, patch * patch * C) features, or (B, L, patch * patch) with `own_channel`.
    """

    def __init__(self, stride: int = 4, patch: int = 1, own_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
            raise ValueError(f"patch must be a positive integer (the patch's side in cells), got {patch!r}")
        self.stride, self.patch, self.own_channel = stride, int(patch), own_channel

    def call(self, features, points):
        if self.own_channel:
            _, channels, height, width = features.shape
        else:
            _, height, width, channels = features.shape
        num, patch = points.shape[1], self.patch
        # The patch's first cell; its fraction is that of every cell of the patch.
        origin = pixels_to_cells(points, self.stride) - (patch - 1) / 2.0             # (B, L, 2)
        # A patch wholly beyond an edge samples that edge wherever it lies: clamping its origin keeps
        # far-off (or infinite) points finite and inside int32 without changing what they sample.
        origin = tf.minimum(tf.maximum(origin, -float(patch)), tf.constant([width - 1.0, height - 1.0]))
        corner = tf.floor(origin)
        fraction = origin - corner
        fx, fy = (fraction[..., 0][..., None, None, None], fraction[..., 1][..., None, None, None])
        corner = tf.cast(corner, tf.int32)
        steps = tf.range(patch + 1)
        # Clamping the block's cell indices to the map is bilinear sampling at the clamped point.
        xs = tf.clip_by_value(corner[..., 0:1] + steps, 0, width - 1)                  # (B, L, P+1)
        ys = tf.clip_by_value(corner[..., 1:2] + steps, 0, height - 1)
        index = ys[..., :, None] * width + xs[..., None, :]                          # (B, L, P+1, P+1)
        if self.own_channel:
            if channels != num:
                raise ValueError(f"own_channel sampling needs one channel per landmark: got {channels} "
                                 f"channels for {num} landmarks")
            flat = tf.reshape(features, [-1, num * height * width, 1])
            index = index + (tf.range(num) * (height * width))[:, None, None]
            channels = 1
        else:
            flat = tf.reshape(features, [-1, height * width, channels])
        block = tf.gather(flat, tf.reshape(index, [-1, num * (patch + 1) ** 2]), axis=1, batch_dims=1)
        block = tf.reshape(block, [-1, num, patch + 1, patch + 1, channels])
        rows = block[:, :, :, :patch] * (1.0 - fx) + block[:, :, :, 1:] * fx           # (B, L, P+1, P, C)
        sampled = rows[:, :, :patch] * (1.0 - fy) + rows[:, :, 1:] * fy                 # (B, L, P, P, C)
        return tf.reshape(sampled, [-1, num, patch * patch * channels])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "patch": self.patch, "own_channel": self.own_channel}
