"""The Gaussian shape prior of the output (`ShapePosterior`): the full covariance of
similarity-aligned training shapes, with the four similarity directions left free."""

from __future__ import annotations

import dataclasses

import numpy as np

from rar_keras.models.shape_bank import generalised_procrustes

# The prior variance of each similarity direction (shift x, shift y, scale, rotation about the
# mean, each a unit vector) in units of the RMS radius squared: as large as the largest shape
# mode's (about 1 for 300-W faces, where most modes are below 0.3), so the posterior places the
# shape where its visible points are, as the frame's fit does. 100 gave the same validation NME to
# 0.001.
SIMILARITY_VARIANCE = 1.0
# The least eigenvalue of the prior, as a fraction of the largest, that is more than rounding: the
# posterior divides by it in float32.
MIN_EIGENVALUE_RATIO = 1e-7


@dataclasses.dataclass
class ShapePrior:
    """What `ShapePosterior` stores: the prior covariance `eigenvectors diag(eigenvalues)
    eigenvectors^T` of a shape flattened as (x0, y0, x1, y1, ...) about `mean`.

    Args:
        mean: the Procrustes mean of the aligned shapes (L, 2), centred, unit RMS radius.
        eigenvectors: (2L, 2L), orthonormal columns.
        eigenvalues: (2L,), positive.
    """

    mean: np.ndarray
    eigenvectors: np.ndarray
    eigenvalues: np.ndarray


def similarity_directions(mean: np.ndarray) -> np.ndarray:
    """The four unit directions (4, 2L) in which a similarity moves the shape `mean` (L, 2): shift
    in x, shift in y, scale and rotation."""
    num_points = len(mean)
    shift_x = np.tile([1.0, 0.0], num_points)
    shift_y = np.tile([0.0, 1.0], num_points)
    scale = mean.reshape(-1)
    rotation = np.stack([-mean[:, 1], mean[:, 0]], -1).reshape(-1)
    return np.stack([d / np.linalg.norm(d) for d in (shift_x, shift_y, scale, rotation)])


def build_shape_prior(shapes: np.ndarray) -> ShapePrior:
    """The prior of training shapes (N, L, 2), in any position, scale and rotation: the covariance of
    the generalised-Procrustes-aligned shapes about their mean (unit RMS radius) plus
    `SIMILARITY_VARIANCE` along each similarity direction, by its eigendecomposition.

    Raises:
        ValueError: shapes not (N, L, 2), or fewer shapes than 2L (the covariance would be singular).
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[-1] != 2 or len(shapes) < 2 * shapes.shape[1]:
        raise ValueError(f"the shape prior needs at least 2L training shapes of shape (N, L, 2), got "
                         f"{shapes.shape}")
    aligned, mean = generalised_procrustes(shapes)
    flat = aligned.reshape(len(aligned), -1) - mean.reshape(-1)
    covariance = flat.T @ flat / (len(flat) - 1)
    directions = similarity_directions(mean)
    covariance += SIMILARITY_VARIANCE * directions.T @ directions
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    if eigenvalues.min() <= MIN_EIGENVALUE_RATIO * eigenvalues.max():
        raise ValueError(f"the training shapes span too few directions: the prior's covariance has an "
                         f"eigenvalue of {eigenvalues.min():.3g} against {eigenvalues.max():.3g} (distinct "
                         f"shapes of every point are needed)")
    return ShapePrior(mean=mean.astype(np.float32), eigenvectors=eigenvectors.astype(np.float32),
                      eigenvalues=eigenvalues.astype(np.float32))
