"""The Gaussian shape model of the heatmap shape fit: the principal modes of similarity-aligned
training shapes and their variances."""

from __future__ import annotations

import dataclasses

import numpy as np

from rar_keras.models.shape_bank import generalised_procrustes


@dataclasses.dataclass
class GaussianShapeModel:
    """What the heatmap shape fit (`HeatmapShapeFit`) stores.

    Args:
        mean: the Procrustes mean of the aligned shapes (L, 2), centred, unit RMS radius.
        basis: the K leading modes of the aligned shapes about that mean (K, L, 2), orthonormal.
        variances: the variance of the aligned shapes along each mode (K,): the sum of the squared
            projections over N - 1.
    """

    mean: np.ndarray
    basis: np.ndarray
    variances: np.ndarray


def build_gaussian_shape_model(shapes: np.ndarray, num_components: int) -> GaussianShapeModel:
    """The Gaussian shape model of training shapes (N, L, 2), in any position, scale and rotation:
    generalised Procrustes, then the principal modes about the Procrustes mean (an SVD).

    Raises:
        ValueError: shapes not (N, L, 2), or too few shapes or points for `num_components` modes.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[-1] != 2 or len(shapes) <= num_components:
        raise ValueError(f"need more than {num_components} training shapes of shape (N, L, 2) for "
                         f"{num_components} modes, got {shapes.shape}")
    if not 1 <= num_components <= 2 * shapes.shape[1]:
        raise ValueError(f"{num_components} modes: shapes of {shapes.shape[1]} points have 1 to "
                         f"{2 * shapes.shape[1]}")
    aligned, mean = generalised_procrustes(shapes)
    flat = aligned.reshape(len(aligned), -1) - mean.reshape(-1)
    _, singular, rows = np.linalg.svd(flat, full_matrices=False)
    num_points = shapes.shape[1]
    return GaussianShapeModel(mean=mean.astype(np.float32),
                              basis=rows[:num_components].reshape(num_components, num_points, 2).astype(np.float32),
                              variances=(singular[:num_components] ** 2 / (len(flat) - 1)).astype(np.float32))
