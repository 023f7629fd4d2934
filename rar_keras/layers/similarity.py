"""Similarity transforms (scale, rotation, shift) as complex multiplication, in TF ops.

Each operation comes in two forms with the same maths. The elementwise one (`transform`,
`weighted_fit`) is what the robust start runs, in training too. The matrix one
(`transform_by_matrix`, `weighted_fit_by_moments`) uses one matrix product where the other takes
x and y apart: about a third fewer ops in an exported graph, for the heatmap shape fit. Their
float32 results differ by rounding, which a training run amplifies from step to step: the robust
start keeps its form so that a resumed run stays as close to an uninterrupted one as before.
"""

import tensorflow as tf

EPSILON = 1e-6


def transform(points, a_re, a_im, t):
    """Applies z -> a z + t to points (..., L, 2); a_re, a_im (...), t (..., 2)."""
    return _times(points, a_re[..., None], a_im[..., None]) + t[..., None, :]


def _times(points, a_re, a_im):
    """The complex product a z of points (..., 2) with a = a_re + i a_im (broadcast against (...))."""
    x, y = points[..., 0], points[..., 1]
    return tf.stack([a_re * x - a_im * y, a_im * x + a_re * y], -1)


def _matrix(a_re, a_im):
    """(..., 2, 2) M with [x, y] @ M = [a_re x - a_im y, a_im x + a_re y], the complex product a z."""
    return tf.stack([tf.stack([a_re, a_im], -1), tf.stack([-a_im, a_re], -1)], -2)


def transform_by_matrix(points, a_re, a_im, t):
    """`transform` as one matrix product."""
    return tf.matmul(points, _matrix(a_re, a_im)) + t[..., None, :]


def from_two_points(src_p, src_q, dst_p, dst_q):
    """The similarity taking src_p -> dst_p and src_q -> dst_q (inputs (..., 2))."""
    ds, db = dst_q - dst_p, src_q - src_p
    norm = tf.maximum(tf.reduce_sum(tf.square(db), -1), EPSILON)
    a_re = (ds[..., 0] * db[..., 0] + ds[..., 1] * db[..., 1]) / norm
    a_im = (ds[..., 1] * db[..., 0] - ds[..., 0] * db[..., 1]) / norm
    return a_re, a_im, dst_p - _times(src_p, a_re, a_im)


def weighted_fit(src, dst, weights):
    """Weighted least-squares similarity from src (..., L, 2) to dst (..., L, 2), weights (..., L)."""
    w = weights[..., None]
    total = tf.maximum(tf.reduce_sum(w, -2), EPSILON)                # (..., 1)
    mean_src = tf.reduce_sum(w * src, -2) / total
    mean_dst = tf.reduce_sum(w * dst, -2) / total
    s, d = src - mean_src[..., None, :], dst - mean_dst[..., None, :]
    norm = tf.maximum(tf.reduce_sum(weights * tf.reduce_sum(tf.square(s), -1), -1), EPSILON)
    a_re = tf.reduce_sum(weights * (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]), -1) / norm
    a_im = tf.reduce_sum(weights * (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]), -1) / norm
    return a_re, a_im, mean_dst - _times(mean_src, a_re, a_im)


def weighted_fit_by_moments(src, dst, weights):
    """`weighted_fit` from the 2x2 matrix of weighted second moments (one matrix product)."""
    w = weights[..., None]
    total = tf.maximum(tf.reduce_sum(w, -2), EPSILON)                # (..., 1)
    means = tf.reduce_sum(w * tf.concat([src, dst], -1), -2) / total  # (..., 4): src's mean, then dst's
    mean_src, mean_dst = means[..., :2], means[..., 2:]
    s, d = src - mean_src[..., None, :], dst - mean_dst[..., None, :]
    weighted = w * s
    # M = [[sum w sx dx, sum w sx dy], [sum w sy dx, sum w sy dy]]: a_re = M00 + M11, a_im = M01 - M10.
    moments = tf.matmul(weighted, d, transpose_a=True)                 # (..., 2, 2)
    norm = tf.maximum(tf.reduce_sum(weighted * s, [-2, -1]), EPSILON)
    a_re = (moments[..., 0, 0] + moments[..., 1, 1]) / norm
    a_im = (moments[..., 0, 1] - moments[..., 1, 0]) / norm
    return a_re, a_im, mean_dst - tf.matmul(mean_src[..., None, :], _matrix(a_re, a_im))[..., 0, :]


def inverse_transform(points, a_re, a_im, t, by_matrix: bool = False):
    """Applies the inverse of z -> a z + t to points (..., L, 2): z -> (z - t) / a (in the matrix form
    with `by_matrix`)."""
    norm = tf.maximum(tf.square(a_re) + tf.square(a_im), EPSILON)
    apply = transform_by_matrix if by_matrix else transform
    return apply(points - t[..., None, :], a_re / norm, -a_im / norm, tf.zeros_like(t))
