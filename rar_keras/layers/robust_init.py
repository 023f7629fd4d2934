"""Robust initialisation: a shape-model fit to the detected shape S_d that ignores occluded points."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers import similarity

INIT_MODES = ("robust", "robust_blend", "detected", "mean", "random")


@keras.saving.register_keras_serializable(package="rar_keras")
class RobustShapeInit(keras.layers.Layer):
    """Chooses the start shape S_0 of the refinement from the detected shape S_d.

    "robust" (the paper's robust start, as a continuous shape model): the shape
    `S = sim(mean + sum_m c_m B_m)`, a combination of the principal modes B of the
    training shapes under a similarity, fitted to S_d by iteratively reweighted
    least squares. Each landmark's weight is its prior weight (the predicted
    visibility) times the Geman-McClure weight `tau^2 / (tau^2 + r^2)` of its
    residual r (in units of the face's RMS radius): occluded and grossly wrong
    points stop pulling the fit. Each round refits the similarity (weighted
    Procrustes) and takes `landweber_steps` gradient steps on the coefficients,
    which starts from the mean shape and stays there in directions no reliable
    point supports. Builtin TFLite ops only: no matrix inverse.

    "robust_blend" keeps S_d's own points in proportion to their final weights.
    For the comparison study: "detected" (S_d itself), "mean" (the mean training
    shape in the crop) and "random" (a random bank shape placed like the mean).

    The bank, the mean shape in crop pixels and the shape model are non-trainable
    weights, saved with the model (`rar_keras.models.shape_bank.build_shape_bank`).

    Args:
        num_landmarks: L.
        bank_size: K bank shapes.
        num_components: M shape modes.
        iterations: reweighting rounds of the robust fit.
        landweber_steps: coefficient steps per round.
        robust_scale: tau, in units of the face's RMS radius.
        shrinkage: ridge pull of the coefficients towards the mean shape, per step.

    Returns: (S_0 (B, L, 2), weights (B, L)): the final robust weight of every point (ones for
    the other modes).
    """

    def __init__(self, num_landmarks: int, bank_size: int = 32, num_components: int = 16, iterations: int = 3,
                 landweber_steps: int = 3, robust_scale: float = 0.1, shrinkage: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_landmarks, self.bank_size, self.num_components = num_landmarks, bank_size, num_components
        self.iterations, self.landweber_steps = iterations, landweber_steps
        self.robust_scale, self.shrinkage = robust_scale, shrinkage
        self.bank = self.add_weight(shape=(bank_size, num_landmarks, 2), initializer="zeros",
                                    trainable=False, name="bank")
        self.mean_shape = self.add_weight(shape=(num_landmarks, 2), initializer="zeros",
                                          trainable=False, name="mean_shape")
        self.shape_mean = self.add_weight(shape=(num_landmarks, 2), initializer="zeros",
                                          trainable=False, name="shape_mean")
        self.basis = self.add_weight(shape=(num_components, num_landmarks, 2), initializer="zeros",
                                     trainable=False, name="shape_basis")
        self.built = True       # every weight exists from here on, whether or not the model calls the layer

    def set_bank(self, bank) -> None:
        """Loads a `ShapeBank` built by `rar_keras.models.shape_bank.build_shape_bank`."""
        self.bank.assign(np.asarray(bank.shapes, np.float32))
        self.mean_shape.assign(np.asarray(bank.mean_shape, np.float32))
        self.shape_mean.assign(np.asarray(bank.shape_mean, np.float32))
        self.basis.assign(np.asarray(bank.basis, np.float32))

    def fit(self, detected, prior):
        """The robust shape-model fit to `detected` (B, L, 2) with prior weights (B, L) in [0, 1]."""
        basis = tf.reshape(self.basis, [self.num_components, -1])             # (M, 2L)
        batch = tf.shape(detected)[0]
        coefficients = tf.zeros([batch, self.num_components])
        model = tf.broadcast_to(self.shape_mean[None], tf.shape(detected))
        weights = prior
        tau_sq = float(self.robust_scale) ** 2
        for _ in range(self.iterations):
            a_re, a_im, t = similarity.weighted_fit(model, detected, weights + 1e-4)
            target = similarity.inverse_transform(detected, a_re, a_im, t)      # S_d in the model frame
            flat_target = tf.reshape(target - self.shape_mean, [batch, -1])
            flat_weights = tf.repeat(weights, 2, axis=-1)                         # x and y of each point
            for _ in range(self.landweber_steps):
                residual = flat_target - tf.matmul(coefficients, basis)
                coefficients = (coefficients + tf.matmul(flat_weights * residual, basis, transpose_b=True)) \
                    * (1.0 - float(self.shrinkage))
            model = self.shape_mean + tf.reshape(tf.matmul(coefficients, basis), tf.shape(detected))
            distance_sq = tf.reduce_sum(tf.square(target - model), -1)           # model frame: RMS radius 1
            weights = prior * tau_sq / (tau_sq + distance_sq)
        a_re, a_im, t = similarity.weighted_fit(model, detected, weights + 1e-4)
        return similarity.transform(model, a_re, a_im, t), weights

    def _placed_like_mean(self, shapes):
        """Unit-radius shapes (B, L, 2) placed at the mean shape's centre and scale."""
        centre = tf.reduce_mean(self.mean_shape, 0)
        radius = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(self.mean_shape - centre), -1)))
        return shapes * radius + centre

    def call(self, detected, prior=None, mode: str = "robust"):
        if mode not in INIT_MODES:
            raise ValueError(f"init mode must be one of {INIT_MODES}, got {mode!r}")
        ones = tf.ones(tf.shape(detected)[:2])
        if mode == "detected":
            return detected, ones
        if mode == "mean":
            return tf.broadcast_to(self.mean_shape[None], tf.shape(detected)), ones
        if mode == "random":
            index = tf.random.uniform([tf.shape(detected)[0]], 0, self.bank_size, dtype=tf.int32)
            return self._placed_like_mean(tf.gather(self.bank, index)), ones
        fitted, weights = self.fit(detected, ones if prior is None else prior)
        if mode == "robust_blend":
            fitted = weights[..., None] * detected + (1.0 - weights[..., None]) * fitted
        return fitted, weights

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "bank_size": self.bank_size,
                "num_components": self.num_components, "iterations": self.iterations,
                "landweber_steps": self.landweber_steps, "robust_scale": self.robust_scale,
                "shrinkage": self.shrinkage}
