"""Turned face crops: in video mode the crop turns with the face, so the model sees it the same way
in every frame.

A track keeps its first landmarks as the reference. Each later crop turns the face's landmarks
by the rotation that best maps them onto that reference (a least-squares fit over every point, so
the noise of single points averages out), then cuts the usual square crop around their tight box
with the model's margin. A head that tilts therefore reaches the model at the angle it had when
the track started, and the model sees nearly the same picture every frame: its error stays the
same from frame to frame instead of changing with the head's pose.
"""

from __future__ import annotations

import math

import numpy as np

from datasets.crops import chain_affine
from datasets.geometry import apply_affine, crop_matrix, rotation_about, similarity_matrix
from datasets.record import landmark_box


def aligned_crop_matrix(points: np.ndarray, reference: np.ndarray, size: int, margin: float) -> np.ndarray:
    """The 2x3 image -> crop matrix of a crop turned so that `points` take `reference`'s angle.

    Args:
        points: the face's landmarks (L, 2) in image pixels (e.g. the previous frame's, moved by
            the face's motion).
        reference: the track's reference landmarks (L, 2): only their angle matters.
        size: the model's crop side in pixels.
        margin: context around the landmarks' tight box, as a fraction of its longer side.
    """
    points = np.asarray(points, np.float64)
    fit = similarity_matrix(points, reference)
    turn = rotation_about(points.mean(0), math.atan2(fit[1, 0], fit[0, 0]))
    box = landmark_box(apply_affine(points, turn))
    return chain_affine(crop_matrix(box, size, margin), turn)
