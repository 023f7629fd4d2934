"""Landmark accuracy metrics: normalisers, NME, failure rate, CED and its AUC.

Everything is NumPy and vectorised over faces. Errors are fractions of the
normaliser (0.05 = 5 %); only printed tables use percent.

Example:
    >>> norm = normalizer(gt, W300, "ip")
    >>> errors = nme(pred, gt, norm)                 # (N,) fractions
    >>> failure_rate(errors, 0.10), auc(errors, 0.10)
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from datasets.schemes import LandmarkScheme

NORMALIZER_NAMES = {
    "ip": "inter-pupil",
    "io": "inter-ocular, outer eye corners",
    "box": "box sqrt(w*h)",
}
FAILURE_THRESHOLDS = (0.08, 0.10)
AUC_STEP = 1e-4


def _batched(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise ValueError(f"landmarks must be (L, 2) or (N, L, 2), got shape {np.shape(points)}")
    return arr


def _group_distance(gt: np.ndarray, groups) -> np.ndarray:
    """Distance between the means of two index groups, per face."""
    left, right = (gt[:, list(group)].mean(axis=1) for group in groups)
    return np.linalg.norm(left - right, axis=-1)


def normalizer(gt, scheme: LandmarkScheme, kind: str, boxes=None) -> np.ndarray:
    """Per-face normalising distance in pixels.

    Args:
        gt: ground-truth landmarks, (N, L, 2) or (L, 2), pixels.
        scheme: the landmark scheme naming the eyes.
        kind: "ip" (distance between the mean of each `scheme.pupils` group),
            "io" (distance between the outer eye corners) or "box"
            (sqrt(w * h) of `boxes`, AFLW's protocol).
        boxes: (N, 4) or (4,) boxes x0, y0, x1, y1; required for "box".

    Returns:
        (N,) float64 distances.
    """
    if kind == "ip":
        return _group_distance(_batched(gt), scheme.pupils)
    if kind == "io":
        return _group_distance(_batched(gt), scheme.outer_eyes)
    if kind == "box":
        if boxes is None:
            raise ValueError("the 'box' normaliser needs the face boxes")
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    raise ValueError(f"unknown normaliser {kind!r}; known: {sorted(NORMALIZER_NAMES)}")


def nme(pred, gt, norm) -> np.ndarray:
    """Normalised mean error per face: mean point-to-point distance / normaliser.

    Args:
        pred: predicted landmarks, (N, L, 2) or (L, 2).
        gt: ground truth of the same shape.
        norm: (N,) per-face normalisers or one number for all faces.

    Returns:
        (N,) float64 fractions (multiply by 100 for percent).
    """
    p, g = _batched(pred), _batched(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth shape {g.shape}")
    mean_error = np.linalg.norm(p - g, axis=-1).mean(axis=-1)
    return mean_error / np.asarray(norm, dtype=np.float64)


def failure_rate(nmes, threshold: float) -> float:
    """Fraction of faces whose NME exceeds `threshold` (non-finite NMEs count as failures)."""
    errors = np.asarray(nmes, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        return float("nan")
    return float(np.mean(~(errors <= threshold)))


def ced_curve(nmes, threshold: float, step: float = AUC_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution on [0, threshold].

    Returns:
        (xs, ys): error levels from 0 to `threshold` every `step`, and the
        fraction of faces with NME <= each level.
    """
    errors = np.sort(np.asarray(nmes, dtype=np.float64).reshape(-1))
    count = int(round(threshold / step))
    xs = np.linspace(0.0, threshold, count + 1)
    if errors.size == 0:
        return xs, np.zeros_like(xs)
    ys = np.searchsorted(errors, xs, side="right") / errors.size
    return xs, ys


def auc(nmes, threshold: float, step: float = AUC_STEP) -> float:
    """Area under the CED curve up to `threshold`, divided by `threshold` (in [0, 1]).

    As HRNet/PIPNet compute it: the CED sampled every `step` and integrated
    numerically (trapezoid rule here, Simpson there; both within `step /
    threshold` of the exact value `mean(clip(1 - nme / threshold, 0, 1))`).
    """
    xs, ys = ced_curve(nmes, threshold, step)
    return float(np.trapezoid(ys, xs) / threshold)


def nme_visible(pred, gt, norm, visible) -> np.ndarray:
    """Per-face NME over the visible points only: `visible` (N, L) bool; a face with none is NaN."""
    pred, gt = _batched(pred), _batched(gt)
    visible = np.asarray(visible, bool).reshape(gt.shape[:2])
    errors = np.linalg.norm(pred - gt, axis=-1)
    count = visible.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (errors * visible).sum(-1) / count, np.nan) / np.asarray(norm, np.float64)


def visibility_auc(predicted_visibility, visible) -> float:
    """ROC AUC (0-1) of the predicted occlusion (1 - visibility) against the occlusion flags.

    Args:
        predicted_visibility: (N, L) probability that each landmark is visible.
        visible: (N, L) bool flags (True visible).

    Returns: NaN when the flags hold only one class (no AUC is defined).
    """
    flags = ~np.asarray(visible, bool).ravel()
    scores = 1.0 - np.asarray(predicted_visibility, np.float64).ravel()
    keep = np.isfinite(scores)
    if flags[keep].all() or not flags[keep].any():
        return float("nan")
    return float(roc_auc_score(flags[keep], scores[keep]))
