"""Similarity transforms (scale, rotation, shift) as complex multiplication, in TF ops."""

import tensorflow as tf

EPSILON = 1e-6


def transform(points, a_re, a_im, t):
    """Applies z -> a z + t to points (..., L, 2); a_re, a_im (...), t (..., 2)."""
    x, y = points[..., 0], points[..., 1]
    a_re, a_im = a_re[..., None], a_im[..., None]
    return tf.stack([a_re * x - a_im * y, a_im * x + a_re * y], -1) + t[..., None, :]


def from_two_points(src_p, src_q, dst_p, dst_q):
    """The similarity taking src_p -> dst_p and src_q -> dst_q (inputs (..., 2))."""
    ds, db = dst_q - dst_p, src_q - src_p
    norm = tf.maximum(tf.reduce_sum(tf.square(db), -1), EPSILON)
    a_re = (ds[..., 0] * db[..., 0] + ds[..., 1] * db[..., 1]) / norm
    a_im = (ds[..., 1] * db[..., 0] - ds[..., 0] * db[..., 1]) / norm
    t = dst_p - tf.stack([a_re * src_p[..., 0] - a_im * src_p[..., 1],
                          a_im * src_p[..., 0] + a_re * src_p[..., 1]], -1)
    return a_re, a_im, t


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
    t = mean_dst - tf.stack([a_re * mean_src[..., 0] - a_im * mean_src[..., 1],
                             a_im * mean_src[..., 0] + a_re * mean_src[..., 1]], -1)
    return a_re, a_im, t


def inverse_transform(points, a_re, a_im, t):
    """Applies the inverse of z -> a z + t to points (..., L, 2): z -> (z - t) / a."""
    norm = tf.maximum(tf.square(a_re) + tf.square(a_im), EPSILON)
    return transform(points - t[..., None, :], a_re / norm, -a_im / norm, tf.zeros_like(t))
