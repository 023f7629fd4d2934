"""The shape posterior: the output shape pulled towards a Gaussian shape prior, each point as far as
its predicted visibility trusts it."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers import similarity

WEIGHT_EPSILON = 1e-4   # added to every point weight of the frame's similarity fit: zero weights stay defined
# The least denominator of the conjugate-gradient ratios: once the residual vanishes they stay 0
# instead of 0 / 0. It must be representable in float16, in which fp16 files store constants. The
# ratios' denominators start at 10 to 500 on real faces (shapes of unit RMS radius) and reach it only
# once the solve has converged: the floor moves no output point of the validation faces by 0.01 px.
DENOMINATOR_FLOOR = 1e-6


@keras.saving.register_keras_serializable(package="rar_keras")
class ShapePosterior(keras.layers.Layer):
    """The posterior mean of the shape under a Gaussian shape prior, the points of `shape` being
    noisy observations of it: `x = mu + Sigma (Sigma + N)^-1 (y - mu)`.

    `y` is the shape in the prior's frame: the visibility-weighted similarity fit of the shape
    onto the prior's mean (unit RMS radius) maps it there, and its inverse maps the posterior mean
    back. The prior (`rar_keras.models.shape_prior`) is the covariance `Sigma` of aligned training
    shapes, the similarity directions left nearly free. Each point's noise variance is
    `visible_noise + (hidden_noise - visible_noise) * (1 - visibility)`: a point predicted visible
    stays nearly where it is, a point predicted hidden moves to where the visible ones and the
    training shapes put it.

    The system `(Sigma^-1 + N^-1) d = N^-1 (y - mu)`, `x = mu + d`, is solved by `steps` unrolled
    steps of conjugate gradients from `d = y - mu` (the shape itself), preconditioned by
    `(Sigma^-1 + I / visible_noise)^-1`, which the eigendecomposition of `Sigma` gives without
    inverting anything: matrix products only, builtin TFLite ops.

    The prior is a set of non-trainable weights saved with the model (`set_prior`).

    Args:
        num_landmarks: L.
        visible_noise: the noise variance of a point predicted visible (shapes of unit RMS radius).
        hidden_noise: the noise variance of a point predicted hidden.
        steps: conjugate-gradient steps.

    Call: `(shape (B, L, 2) crop pixels, visibility (B, L))` -> the posterior mean (B, L, 2) crop pixels.
    """

    def __init__(self, num_landmarks: int, visible_noise: float = 1e-4, hidden_noise: float = 1e-2,
                 steps: int = 16, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < visible_noise <= hidden_noise:
            raise ValueError(f"need 0 < visible_noise <= hidden_noise, got {visible_noise}, {hidden_noise}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.num_landmarks, self.steps = int(num_landmarks), int(steps)
        self.visible_noise, self.hidden_noise = float(visible_noise), float(hidden_noise)
        size = 2 * self.num_landmarks
        self.prior_mean = self.add_weight(shape=(num_landmarks, 2), initializer="zeros", trainable=False,
                                          name="prior_mean")
        self.eigenvectors = self.add_weight(shape=(size, size), initializer="identity", trainable=False,
                                            name="prior_eigenvectors")
        self.eigenvalues = self.add_weight(shape=(size,), initializer="ones", trainable=False,
                                           name="prior_eigenvalues")
        self.built = True       # every weight exists from here on, whether or not the model calls the layer

    def set_prior(self, mean, eigenvectors, eigenvalues) -> None:
        """Loads the prior: mean (L, 2) of unit RMS radius, orthonormal eigenvectors (2L, 2L) as columns,
        positive eigenvalues (2L,) of the covariance."""
        self.prior_mean.assign(np.asarray(mean, np.float32))
        self.eigenvectors.assign(np.asarray(eigenvectors, np.float32))
        self.eigenvalues.assign(np.asarray(eigenvalues, np.float32))

    def noise(self, visibility):
        """Each coordinate's noise variance (B, 2L) from the points' visibility (B, L)."""
        hidden = 1.0 - tf.clip_by_value(visibility, 0.0, 1.0)
        return tf.repeat(self.visible_noise + (self.hidden_noise - self.visible_noise) * hidden, 2, axis=-1)

    def call(self, shape, visibility):
        vectors, values = self.eigenvectors, self.eigenvalues
        inverse_prior = 1.0 / values
        preconditioner = values * self.visible_noise / (values + self.visible_noise)

        def in_eigenbasis(flat, factor):          # flat (B, 2L) -> V diag(factor) V^T flat
            return tf.matmul(tf.matmul(flat, vectors) * factor, vectors, transpose_b=True)

        mean = tf.broadcast_to(self.prior_mean[None], tf.shape(shape))
        a_re, a_im, t = similarity.weighted_fit_by_moments(shape, mean, visibility + WEIGHT_EPSILON)
        local = tf.reshape(similarity.transform_by_matrix(shape, a_re, a_im, t), [-1, 2 * self.num_landmarks])
        flat_mean = tf.reshape(self.prior_mean, [1, -1])
        inverse_noise = 1.0 / self.noise(visibility)

        def operator(d):                           # (Sigma^-1 + N^-1) d
            return in_eigenbasis(d, inverse_prior) + inverse_noise * d

        offset = local - flat_mean                 # the start: the shape itself
        residual = inverse_noise * offset - operator(offset)
        direction = in_eigenbasis(residual, preconditioner)
        rho = tf.reduce_sum(residual * direction, -1, keepdims=True)
        for _ in range(self.steps):
            image = operator(direction)
            alpha = rho / tf.maximum(tf.reduce_sum(direction * image, -1, keepdims=True), DENOMINATOR_FLOOR)
            offset += alpha * direction
            residual -= alpha * image
            preconditioned = in_eigenbasis(residual, preconditioner)
            next_rho = tf.reduce_sum(residual * preconditioned, -1, keepdims=True)
            direction = preconditioned + next_rho / tf.maximum(rho, DENOMINATOR_FLOOR) * direction
            rho = next_rho
        posterior = tf.reshape(flat_mean + offset, tf.shape(shape))
        return similarity.inverse_transform(posterior, a_re, a_im, t, by_matrix=True)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "visible_noise": self.visible_noise,
                "hidden_noise": self.hidden_noise, "steps": self.steps}
