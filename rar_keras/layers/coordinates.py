"""Conversions between crop pixels and heatmap/feature cells (pixel centres on integers)."""

import tensorflow as tf


def pixels_to_cells(points, stride: int):
    """Crop-pixel coordinates to feature-cell coordinates."""
    return (points + 0.5) / float(stride) - 0.5


def cells_to_pixels(cells, stride: int):
    """Feature-cell coordinates to crop-pixel coordinates."""
    return (cells + 0.5) * float(stride) - 0.5


def cell_grid(height: int, width: int):
    """(x, y) cell coordinates of a flattened height*width grid, each (H*W,) float32."""
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                         indexing="ij")
    return tf.reshape(xs, [-1]), tf.reshape(ys, [-1])


def flatten_heatmaps(heatmaps):
    """(B, H, W, L) heatmaps as (B, L, H*W): one flattened map per landmark."""
    _, height, width, num = heatmaps.shape
    return tf.transpose(tf.reshape(heatmaps, [-1, height * width, num]), [0, 2, 1])


def shape_scale(shape, minimum: float = 1.0):
    """Centroid (B, 1, 2) and RMS radius (B, 1, 1) of shapes (B, L, 2), the radius clamped to `minimum`.

    Clamping keeps a degenerate shape (all points on one spot) from dividing by zero.
    """
    centre = tf.reduce_mean(shape, axis=1, keepdims=True)
    radius = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(shape - centre), -1), axis=1, keepdims=True))
    return centre, tf.maximum(radius, minimum)[..., None]
