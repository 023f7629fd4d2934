"""The heatmap shape fit: a start shape S_0 that a Gaussian shape model fits to the detector's heatmaps."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rar_keras.layers import similarity
from rar_keras.layers.coordinates import cells_to_pixels

MIN_MASS = 1e-12     # kernel-weighted probability below which a landmark's target is its current place
WEIGHT_EPSILON = 1e-4   # added to every point weight of the similarity fits: zero weights everywhere stay defined


@keras.saving.register_keras_serializable(package="rar_keras")
class HeatmapShapeFit(keras.layers.Layer):
    """Fits a Gaussian shape model to the conv8 heatmaps: the start `S_0 = sim(mean + sum_k b_k B_k)`.

    Regularised landmark mean-shift (Saragih, Lucey and Cohn, IJCV 2011). Each round, every
    landmark's target is the mean of its heatmap's probabilities weighted by a Gaussian kernel of
    radius `rho` around the current shape, so a landmark follows the part of its heatmap nearest
    to where the shape puts it (a landmark with no probability mass under its kernel keeps its
    place); the shape model is then fitted to the targets. The first round starts from `S_d`;
    the default radii shrink from round to round (coarse to fine).

    The fit weighs each point by `w = min(1, visibility ** visibility_power + weight_floor)`.
    Each round maps the targets into the model's frame by the weighted Procrustes similarity
    from the current model shape; each of `em_steps` coefficient steps then fills every point in
    proportion to `1 - w` from the current model shape (an EM step for the points the model
    predicts hidden) and shrinks mode k by `variance_k / (variance_k + ridge)`, the posterior
    mean under the Gaussian prior for isotropic point noise of variance `ridge` (shapes of unit
    RMS radius). The round's similarity places the new model shape for the next round's kernel;
    after the last round a weighted similarity fit places it on the last targets. The basis is
    orthonormal, so no step inverts a matrix: builtin TFLite ops only. The coefficients carry
    over from round to round.

    The shape model (mean, basis, variances) is a set of non-trainable weights saved with the
    model (`rar_keras.models.gaussian_shape_model.build_gaussian_shape_model`).

    Args:
        num_landmarks: L.
        num_components: K modes of the shape model.
        stride: crop pixels per heatmap cell.
        radii: the kernel radius of each round, in heatmap cells.
        em_steps: coefficient steps per round.
        ridge: the point noise variance of the prior, in units of the RMS radius squared.
        visibility_power: p in the point weights.
        weight_floor: the least weight a point predicted hidden keeps.

    Call: `(probabilities (B, L, H, W), start (B, L, 2) crop pixels, visibility (B, L))` -> S_0
    (B, L, 2) crop pixels.
    """

    def __init__(self, num_landmarks: int, num_components: int = 30, stride: int = 4,
                 radii: tuple[float, ...] = (3.0, 2.0, 1.0), em_steps: int = 3, ridge: float = 0.003,
                 visibility_power: float = 0.5, weight_floor: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if not radii or min(radii) <= 0:
            raise ValueError(f"radii must be positive heatmap cells, got {radii!r}")
        if em_steps < 1 or num_components < 1 or not ridge > 0:
            raise ValueError(f"em_steps and num_components must be >= 1 and ridge > 0, got {em_steps}, "
                             f"{num_components}, {ridge}")
        if not (0.0 <= weight_floor <= 1.0 and visibility_power >= 0.0):
            raise ValueError(f"weight_floor must be in [0, 1] and visibility_power >= 0, got {weight_floor}, "
                             f"{visibility_power}")
        self.num_landmarks, self.num_components, self.stride = num_landmarks, num_components, stride
        self.radii, self.em_steps, self.ridge = tuple(float(r) for r in radii), int(em_steps), float(ridge)
        self.visibility_power, self.weight_floor = float(visibility_power), float(weight_floor)
        self.shape_mean = self.add_weight(shape=(num_landmarks, 2), initializer="zeros", trainable=False,
                                          name="fit_shape_mean")
        self.basis = self.add_weight(shape=(num_components, num_landmarks, 2), initializer="zeros",
                                     trainable=False, name="fit_basis")
        self.variances = self.add_weight(shape=(num_components,), initializer="ones", trainable=False,
                                         name="fit_variances")
        self.built = True       # every weight exists from here on, whether or not the model calls the layer

    def set_shape_model(self, mean, basis, variances) -> None:
        """Loads the shape model: mean (L, 2) of unit RMS radius, orthonormal basis (K, L, 2),
        variances (K,) of the training shapes along each mode."""
        self.shape_mean.assign(np.asarray(mean, np.float32))
        self.basis.assign(np.asarray(basis, np.float32))
        self.variances.assign(np.asarray(variances, np.float32))

    def kernel_targets(self, probabilities, shape, radius_cells: float):
        """Each landmark's probability-weighted mean position under a Gaussian kernel of
        `radius_cells` around `shape` (B, L, 2): (B, L, 2) crop pixels."""
        height, width = probabilities.shape[2], probabilities.shape[3]
        xs = cells_to_pixels(tf.range(width, dtype=tf.float32), self.stride)
        ys = cells_to_pixels(tf.range(height, dtype=tf.float32), self.stride)
        rho = radius_cells * float(self.stride)
        scale = -0.5 / (rho * rho)
        kernel_x = tf.exp(scale * tf.square(xs - shape[..., 0:1]))               # (B, L, W)
        kernel_y = tf.exp(scale * tf.square(ys - shape[..., 1:2]))               # (B, L, H)
        rows = tf.matmul(probabilities, tf.stack([kernel_x, kernel_x * xs], -1))  # (B, L, H, 2)
        mass = tf.reduce_sum(rows[..., 0] * kernel_y, -1)
        moments = tf.stack([tf.reduce_sum(rows[..., 1] * kernel_y, -1), tf.reduce_sum(rows[..., 0] * kernel_y * ys, -1)],
                           -1)
        # A landmark whose kernel holds (next to) no probability keeps its place.
        return (moments + MIN_MASS * shape) / (mass + MIN_MASS)[..., None]

    def point_weights(self, visibility):
        """Each point's weight (B, L) in the fit, from its predicted visibility (B, L)."""
        return tf.minimum(tf.pow(tf.maximum(visibility, 0.0), self.visibility_power) + self.weight_floor, 1.0)

    def call(self, probabilities, start, visibility):
        weights = self.point_weights(visibility)
        flat_weights = tf.repeat(weights, 2, axis=-1)                             # x and y of each point
        basis = tf.reshape(self.basis, [self.num_components, -1])                 # (K, 2L)
        shrink = self.variances / (self.variances + self.ridge)
        flat_mean = tf.reshape(self.shape_mean, [-1])
        model = tf.broadcast_to(flat_mean[None], tf.shape(flat_weights))          # the mean shape, b = 0
        shape = start
        for round_index, radius in enumerate(self.radii):
            if round_index:          # the previous round's model shape, placed by that round's similarity
                shape = similarity.transform_by_matrix(tf.reshape(model, tf.shape(start)), a_re, a_im, t)
            targets = self.kernel_targets(probabilities, shape, radius)
            a_re, a_im, t = similarity.weighted_fit_by_moments(tf.reshape(model, tf.shape(start)), targets,
                                                               weights + WEIGHT_EPSILON)
            local = tf.reshape(similarity.inverse_transform(targets, a_re, a_im, t, by_matrix=True), tf.shape(flat_weights))
            seen = flat_weights * local                      # the targets in the model's frame, weighted
            for _ in range(self.em_steps):
                coefficients = shrink * tf.matmul(seen + (1.0 - flat_weights) * model - flat_mean, basis,
                                                  transpose_b=True)
                model = flat_mean + tf.matmul(coefficients, basis)
        model = tf.reshape(model, tf.shape(start))
        a_re, a_im, t = similarity.weighted_fit_by_moments(model, targets, weights + WEIGHT_EPSILON)
        return similarity.transform_by_matrix(model, a_re, a_im, t)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "num_components": self.num_components,
                "stride": self.stride, "radii": list(self.radii), "em_steps": self.em_steps, "ridge": self.ridge,
                "visibility_power": self.visibility_power, "weight_floor": self.weight_floor}
