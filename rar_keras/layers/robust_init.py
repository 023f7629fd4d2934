"""Robust initialisation: the shape-bank entry that agrees with the most detected points."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers import similarity

INIT_MODES = ("robust", "robust_inliers", "least_squares", "mean", "random", "detected")


@keras.saving.register_keras_serializable(package="rar_keras")
class RobustShapeInit(keras.layers.Layer):
    """Chooses the start shape S_0 from a precomputed shape bank given the detected shape S_d.

    Every bank shape is aligned to S_d by RANSAC over fixed landmark pairs (a
    similarity from two correspondences per hypothesis), refined by least
    squares on its inliers, and scored by the truncated (MSAC) error; the best
    bank shape wins. "robust_inliers" keeps S_d's own points where they are inliers
    of that fit and takes the fitted bank shape elsewhere. Other modes exist for
    the comparison study: the least-squares
    fit of every bank shape ("least_squares"), the mean shape ("mean"), a random
    bank shape placed like the mean ("random"), or S_d itself ("detected").

    The bank (K, L, 2; centred, unit RMS radius), the mean shape in crop pixels
    (L, 2) and the RANSAC pairs (M, 2) are non-trainable weights, so they are
    saved with the model.

    Args:
        num_landmarks: L.
        bank_size: K.
        num_pairs: M RANSAC hypotheses per bank shape.
        inlier_threshold: inlier distance in crop pixels.
        refine_iterations: least-squares refits on the inliers.
    """

    def __init__(self, num_landmarks: int, bank_size: int, num_pairs: int, inlier_threshold: float,
                 refine_iterations: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.num_landmarks, self.bank_size, self.num_pairs = num_landmarks, bank_size, num_pairs
        self.inlier_threshold, self.refine_iterations = inlier_threshold, refine_iterations
        self.bank = self.add_weight(shape=(bank_size, num_landmarks, 2), initializer="zeros",
                                    trainable=False, name="bank")
        self.mean_shape = self.add_weight(shape=(num_landmarks, 2), initializer="zeros",
                                          trainable=False, name="mean_shape")
        self.pairs = self.add_weight(shape=(num_pairs, 2), initializer="zeros", trainable=False,
                                     dtype="int32", name="ransac_pairs")

    def set_bank(self, bank: np.ndarray, mean_shape: np.ndarray, pairs: np.ndarray) -> None:
        """Loads a bank built by `rar_keras.shape_bank.build_shape_bank`."""
        self.bank.assign(np.asarray(bank, np.float32))
        self.mean_shape.assign(np.asarray(mean_shape, np.float32))
        self.pairs.assign(np.asarray(pairs, np.int32))

    def _score(self, aligned, detected):
        """MSAC score (lower is better) and inlier mask of aligned shapes against S_d."""
        sq = tf.reduce_sum(tf.square(aligned - detected), -1)
        tau_sq = float(self.inlier_threshold) ** 2
        return tf.reduce_sum(tf.minimum(sq, tau_sq), -1), tf.cast(sq < tau_sq, aligned.dtype)

    def _ransac(self, detected):
        bank = self.bank                                             # (K, L, 2)
        p, q = self.pairs[:, 0], self.pairs[:, 1]
        det = detected[:, None, None]                                # (B, 1, 1, L, 2)
        a_re, a_im, t = similarity.from_two_points(
            tf.gather(bank, p, axis=1)[None], tf.gather(bank, q, axis=1)[None],
            tf.gather(detected, p, axis=1)[:, None], tf.gather(detected, q, axis=1)[:, None])
        hypotheses = similarity.transform(bank[None, :, None], a_re, a_im, t)  # (B, K, M, L, 2)
        scores, inliers = self._score(hypotheses, det)
        best = tf.one_hot(tf.argmin(scores, -1), self.num_pairs, dtype=scores.dtype)  # (B, K, M)
        inliers = tf.reduce_sum(inliers * best[..., None], 2)         # (B, K, L)
        aligned = tf.reduce_sum(hypotheses * best[..., None, None], 2)
        source = tf.broadcast_to(bank[None], tf.shape(aligned))
        for _ in range(self.refine_iterations):
            weights = inliers + 1e-3                                  # all-outlier bank shapes stay finite
            aligned = similarity.transform(source, *similarity.weighted_fit(source, detected[:, None],
                                                                            weights))
            _, inliers = self._score(aligned, detected[:, None])
        return aligned

    def _least_squares(self, detected):
        source = tf.broadcast_to(self.bank[None], [tf.shape(detected)[0], self.bank_size,
                                                  self.num_landmarks, 2])
        weights = tf.ones(tf.shape(source)[:-1])
        return similarity.transform(source, *similarity.weighted_fit(source, detected[:, None], weights))

    def _placed_like_mean(self, shapes):
        """Bank-normalised shapes (B, L, 2) placed at the mean shape's centre and scale."""
        centre = tf.reduce_mean(self.mean_shape, 0)
        radius = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(self.mean_shape - centre), -1)))
        return shapes * radius + centre

    def call(self, detected, mode: str = "robust", training=None):
        """Returns (S_0 (B, L, 2), chosen bank index (B,), or -1 where no bank shape is used)."""
        if mode not in INIT_MODES:
            raise ValueError(f"init mode must be one of {INIT_MODES}, got {mode!r}")
        batch = tf.shape(detected)[0]
        no_index = -tf.ones([batch], tf.int32)
        if mode == "detected":
            return detected, no_index
        if mode == "mean":
            return tf.broadcast_to(self.mean_shape[None], tf.shape(detected)), no_index
        if mode == "random":
            index = tf.random.uniform([batch], 0, self.bank_size, dtype=tf.int32)
            return self._placed_like_mean(tf.gather(self.bank, index)), index
        aligned = self._least_squares(detected) if mode == "least_squares" else self._ransac(detected)
        scores, inliers = self._score(aligned, detected[:, None])
        index = tf.argmin(scores, -1, output_type=tf.int32)
        choice = tf.one_hot(index, self.bank_size, dtype=aligned.dtype)
        start = tf.reduce_sum(aligned * choice[..., None, None], 1)
        if mode == "robust_inliers":
            inlier = tf.reduce_sum(inliers * choice[..., None], 1)[..., None]     # (B, L, 1)
            start = inlier * detected + (1.0 - inlier) * start
        return start, index

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "bank_size": self.bank_size,
                "num_pairs": self.num_pairs, "inlier_threshold": self.inlier_threshold,
                "refine_iterations": self.refine_iterations}
