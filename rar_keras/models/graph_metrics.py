"""Inter-pupil NME inside the graph, for metrics during `fit` (eval/metrics.py is the reference)."""

import tensorflow as tf


def pupil_distance(landmarks, scheme):
    """Distance between the means of the scheme's two eye-centre groups, (B,)."""
    left = tf.reduce_mean(tf.gather(landmarks, list(scheme.left_eye), axis=1), 1)
    right = tf.reduce_mean(tf.gather(landmarks, list(scheme.right_eye), axis=1), 1)
    return tf.maximum(tf.norm(left - right, axis=-1), 1e-6)


def nme_ip(pred, target, scheme):
    """Mean point-to-point error over inter-pupil distance per face, (B,)."""
    error = tf.reduce_mean(tf.norm(pred - target, axis=-1), -1)
    return error / pupil_distance(target, scheme)
