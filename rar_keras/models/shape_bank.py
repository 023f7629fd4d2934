"""The precomputed shape bank: K-means over similarity-aligned training shapes, RANSAC-cleaned."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import RANSACRegressor, LinearRegression

from datasets.geometry import apply_affine, similarity_matrix

PROCRUSTES_ITERATIONS = 5
# A shape is kept when RANSAC finds at least this fraction of its points consistent with the mean.
MIN_INLIER_FRACTION = 0.75
# RANSAC residual threshold: this many times the median point residual of the aligned training set.
RANSAC_RESIDUAL_FACTOR = 8.0


@dataclasses.dataclass
class ShapeBank:
    """What the start-shape layer (`RobustShapeInit`) stores.

    Args:
        shapes: K bank shapes (K, L, 2), centred, unit RMS radius (K-means centres).
        mean_shape: the mean training shape in crop pixels (L, 2).
        shape_mean: the mean of the aligned shapes (L, 2), centred, unit RMS radius.
        basis: the shape basis (M, L, 2): the M leading principal components of the aligned
            shapes, orthonormal.
        dropped: how many training shapes RANSAC dropped as grossly wrong.
    """

    shapes: np.ndarray
    mean_shape: np.ndarray
    shape_mean: np.ndarray
    basis: np.ndarray
    dropped: int = 0


def normalise(shapes: np.ndarray) -> np.ndarray:
    """Centres each (L, 2) shape and scales it to unit RMS radius."""
    centred = shapes - shapes.mean(axis=-2, keepdims=True)
    radius = np.sqrt((centred ** 2).sum(-1).mean(-1))[..., None, None]
    return centred / np.maximum(radius, 1e-9)


def _similarity_design(source: np.ndarray) -> np.ndarray:
    """Rows of the linear system [x' y'] = [a -b; b a][x y] + t, unknowns (a, b, tx, ty)."""
    x, y = source[:, 0], source[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    return np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])


def align_to(shapes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity alignment of every shape onto `target`."""
    return normalise(np.stack([apply_affine(shape, similarity_matrix(shape, target)) for shape in shapes]))


def generalised_procrustes(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligns all shapes to their evolving mean; returns (aligned shapes, mean)."""
    aligned = normalise(shapes)
    mean = aligned[0]
    for _ in range(PROCRUSTES_ITERATIONS):
        mean = normalise(aligned.mean(0, keepdims=True))[0]
        aligned = align_to(aligned, mean)
    return aligned, mean


def ransac_inliers(shape: np.ndarray, target: np.ndarray, threshold: float, seed: int) -> np.ndarray:
    """Points of `shape` consistent with a RANSAC similarity fit onto `target` (L,) bool."""
    rows = _similarity_design(shape)
    rhs = np.concatenate([target[:, 0], target[:, 1]])
    ransac = RANSACRegressor(LinearRegression(fit_intercept=False), min_samples=4,
                             residual_threshold=threshold, random_state=seed, max_trials=50)
    ransac.fit(rows, rhs)
    num = len(shape)
    return ransac.inlier_mask_[:num] & ransac.inlier_mask_[num:]


def build_shape_bank(shapes: np.ndarray, bank_size: int, num_components: int, seed: int = 0) -> ShapeBank:
    """Builds the bank and the shape basis from training shapes (N, L, 2) in crop pixels.

    Shapes are similarity-aligned (generalised Procrustes); RANSAC fits each onto
    the mean and drops shapes with grossly wrong points; K-means (scikit-learn)
    gives `bank_size` representative shapes and PCA (scikit-learn) the
    `num_components` leading modes of shape variation.

    Args:
        shapes: training landmarks in crop pixels of the model's input.
        bank_size: K.
        num_components: M principal components.
        seed: seed of RANSAC, K-means and PCA.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    needed = max(bank_size, num_components + 1)
    if shapes.ndim != 3 or shapes.shape[-1] != 2 or len(shapes) < needed:
        raise ValueError(f"need at least {needed} training shapes of shape (N, L, 2) for a bank of "
                         f"{bank_size} and {num_components} components, got {shapes.shape}")
    aligned, mean = generalised_procrustes(shapes)
    threshold = RANSAC_RESIDUAL_FACTOR * float(np.median(np.abs(aligned - mean)))
    keep = np.array([ransac_inliers(s, mean, threshold, seed).mean() >= MIN_INLIER_FRACTION
                     for s in aligned])
    if keep.sum() < needed:
        keep[:] = True
    kept = aligned[keep].reshape(int(keep.sum()), -1)
    kmeans = KMeans(n_clusters=bank_size, n_init=4, random_state=seed)
    kmeans.fit(kept)
    bank = normalise(kmeans.cluster_centers_.reshape(bank_size, -1, 2))
    pca = PCA(n_components=num_components, random_state=seed).fit(kept)
    num_points = shapes.shape[1]
    return ShapeBank(shapes=bank.astype(np.float32), mean_shape=shapes.mean(0).astype(np.float32),
                     shape_mean=pca.mean_.reshape(num_points, 2).astype(np.float32),
                     basis=pca.components_.reshape(num_components, num_points, 2).astype(np.float32),
                     dropped=int((~keep).sum()))

