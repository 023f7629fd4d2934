"""Shape-indexed pooling (SIP): deep features sampled bilinearly at each landmark."""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

# Cell coordinates are clamped to this far beyond any map before sampling. Clamping each sampled
# cell to the map (below) gives such points the border's value wherever they lie; this clamp keeps
# far-off (or infinite) points finite.
FAR_CELLS = 1.0e4


class GridPoints(NamedTuple):
    """Points located on a feature grid, what `ShapeIndexedPooling.pool` samples.

    Attributes:
        corner: (B, L, 2, 1) float, the (x, y) cell at or before each point (whole numbers).
        fx: (B, L, 1, 1, 1) the point's fraction of a cell beyond `corner` along x.
        fy: (B, L, 1, 1, 1) the same along y.
    """
    corner: tf.Tensor
    fx: tf.Tensor
    fy: tf.Tensor


@keras.saving.register_keras_serializable(package="rar_keras")
class ShapeIndexedPooling(keras.layers.Layer):
    """Samples features (B, H, W, C) at landmarks (B, L, 2) given in crop pixels.

    Bilinear interpolation via `tf.gather` with `batch_dims=1` (builtin TFLite ops;
    gradients reach the features). Points outside the map take the value at its border
    (clamp-to-edge), however far off they are. The cells of a patch lie one cell apart,
    so they all share the same fractional offset: each landmark gathers one
    (patch + 1)^2 block of cells and interpolates it along x, then y.

    Locating the points (`locate`: cell coordinates, corner, fractions) depends only on the
    stride and on the parity of the patch's side, so layers on the same grid can share it
    (`grid`); `pool` samples one map at located points, and `call` does both. On a phone each
    small op costs about as much as its arithmetic, so the shared location saves time.

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

    @property
    def grid(self) -> tuple:
        """What `locate` depends on: layers with equal grids can share its result."""
        return self.stride, self.patch % 2

    def locate(self, points) -> GridPoints:
        """Where points (B, L, 2) in crop pixels fall on this layer's grid.

        The cell coordinate is `(p + 0.5) / stride - 0.5` (pixel centres on integers, as
        `rar_keras.layers.coordinates.pixels_to_cells`), written as one product and one sum. The
        cells of an even patch sit half a cell off the point's; the location includes that half.
        """
        offset = 0.5 / self.stride - 0.5 - (0.5 if self.patch % 2 == 0 else 0.0)
        cells = tf.clip_by_value(points * (1.0 / self.stride) + offset, -FAR_CELLS, FAR_CELLS)
        corner = tf.floor(cells)
        fraction = tf.reshape(cells - corner, [-1, points.shape[1], 1, 1, 2])
        return GridPoints(corner[..., None], fraction[..., 0:1], fraction[..., 1:2])

    def pool(self, features, located: GridPoints):
        """Samples `features` at points found by `locate` (of this layer or one with the same grid)."""
        if self.own_channel:
            _, channels, height, width = features.shape
        else:
            _, height, width, channels = features.shape
        num, patch = located.corner.shape[1], self.patch
        # The block's cells along each axis, clamped to the map: bilinear sampling at the clamped point.
        steps = np.arange(patch + 1, dtype=np.float32) - (patch - 1) // 2
        cells = tf.clip_by_value(located.corner + steps, 0.0, np.array([[width - 1], [height - 1]], np.float32))
        cells = cells * np.array([[1.0], [width]], np.float32)                          # (B, L, 2, P+1)
        index = cells[:, :, 1, :, None] + cells[:, :, 0, None, :]                       # (B, L, P+1, P+1)
        # Whole numbers are exact in float: the cast loses nothing. The float constants above are
        # small whole numbers, exact in float16 too (a float16 export stores constants that way).
        index = tf.cast(index, tf.int32)
        if self.own_channel:
            if channels != num:
                raise ValueError(f"own_channel sampling needs one channel per landmark: got {channels} "
                                 f"channels for {num} landmarks")
            flat = tf.reshape(features, [-1, num * height * width, 1])
            # Landmark l's map starts at l * H * W: too large for float16 constants, so added in int32.
            index = index + (np.arange(num, dtype=np.int32) * (height * width))[:, None, None]
            channels = 1
        else:
            flat = tf.reshape(features, [-1, height * width, channels])
        index = tf.reshape(index, [-1, num * (patch + 1) ** 2])
        block = tf.reshape(tf.gather(flat, index, axis=1, batch_dims=1), [-1, num, patch + 1, patch + 1, channels])
        left = block[:, :, :, :patch]
        rows = left + located.fx * (block[:, :, :, 1:] - left)                          # (B, L, P+1, P, C)
        top = rows[:, :, :patch]
        sampled = top + located.fy * (rows[:, :, 1:] - top)                             # (B, L, P, P, C)
        return tf.reshape(sampled, [-1, num, patch * patch * channels])

    def call(self, features, points):
        return self.pool(features, self.locate(points))

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "patch": self.patch, "own_channel": self.own_channel}
