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

    RANSAC over (bank shape, landmark pair) hypotheses: each pair gives the
    similarity taking that bank shape's two points onto S_d's, scored by the
    truncated (MSAC) error over all landmarks. The best hypothesis's bank shape
    is refitted by least squares on its inliers. "robust_inliers" keeps S_d's
    own points where they are inliers of that fit and takes the fitted bank
    shape elsewhere. Other modes exist for the comparison study: the
    least-squares fit of every bank shape ("least_squares"), the mean shape ("mean"), a random
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
        """Loads a bank built by `rar_keras.models.shape_bank.build_shape_bank`."""
        self.bank.assign(np.asarray(bank, np.float32))
        self.mean_shape.assign(np.asarray(mean_shape, np.float32))
        self.pairs.assign(np.asarray(pairs, np.int32))

    def _score(self, aligned, detected):
        """MSAC score (lower is better) and inlier mask of aligned shapes against S_d."""
        sq = tf.reduce_sum(tf.square(aligned - detected), -1)
        tau_sq = float(self.inlier_threshold) ** 2
        return tf.reduce_sum(tf.minimum(sq, tau_sq), -1), tf.cast(sq < tau_sq, aligned.dtype)

    def _ransac(self, detected):
        """The best (bank shape, pair) hypothesis refitted on its inliers: S_0 (B, L, 2), index (B,), inliers."""
        bank = self.bank                                             # (K, L, 2)
        p, q = self.pairs[:, 0], self.pairs[:, 1]
        a_re, a_im, t = similarity.from_two_points(
            tf.gather(bank, p, axis=1)[None], tf.gather(bank, q, axis=1)[None],
            tf.gather(detected, p, axis=1)[:, None], tf.gather(detected, q, axis=1)[:, None])  # (B, K, M)
        # Residuals of every hypothesis at every landmark, x and y apart: (B, K, M, L).
        bank_x, bank_y = bank[None, :, None, :, 0], bank[None, :, None, :, 1]
        det_x, det_y = detected[:, None, None, :, 0], detected[:, None, None, :, 1]
        a_re_l, a_im_l = a_re[..., None], a_im[..., None]
        res_x = a_re_l * bank_x - a_im_l * bank_y + (t[..., :1] - det_x)
        res_y = a_im_l * bank_x + a_re_l * bank_y + (t[..., 1:] - det_y)
        tau_sq = float(self.inlier_threshold) ** 2
        scores = tf.reduce_sum(tf.minimum(tf.square(res_x) + tf.square(res_y), tau_sq), -1)   # (B, K, M)
        # The winning hypothesis over all K*M, then least squares on its inliers (one shape, not K).
        flat_scores = tf.reshape(scores, [-1, self.bank_size * self.num_pairs])
        winner = tf.argmin(flat_scores, -1, output_type=tf.int32)
        choice = tf.one_hot(winner, self.bank_size * self.num_pairs, dtype=scores.dtype)     # (B, K*M)

        def pick(value):                                              # (B, K, M) -> the winner's (B,)
            return tf.reduce_sum(tf.reshape(value, tf.shape(flat_scores)) * choice, -1)

        index = winner // self.num_pairs
        source = tf.gather(bank, index)                               # (B, L, 2)
        aligned = similarity.transform(source, pick(a_re), pick(a_im),
                                       tf.stack([pick(t[..., 0]), pick(t[..., 1])], -1))
        _, inliers = self._score(aligned, detected)
        for _ in range(self.refine_iterations):
            weights = inliers + 1e-3                                  # an all-outlier fit stays finite
            aligned = similarity.transform(source, *similarity.weighted_fit(source, detected, weights))
            _, inliers = self._score(aligned, detected)
        return aligned, index, inliers

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
        if mode == "least_squares":
            aligned = self._least_squares(detected)
            scores, _ = self._score(aligned, detected[:, None])
            index = tf.argmin(scores, -1, output_type=tf.int32)
            return tf.gather(aligned, index, batch_dims=1), index
        start, index, inliers = self._ransac(detected)
        if mode == "robust_inliers":
            start = inliers[..., None] * detected + (1.0 - inliers[..., None]) * start
        return start, index

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "bank_size": self.bank_size,
                "num_pairs": self.num_pairs, "inlier_threshold": self.inlier_threshold,
                "refine_iterations": self.refine_iterations}
