"""Face-crop geometry: the affine map from image pixels to model-crop pixels and back.

Convention: pixel centres sit on integer coordinates, in the image and in the
crop alike, which is also OpenCV's `warpAffine` convention.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MARGIN = 0.25


def crop_matrix(box, size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """2x3 matrix mapping image pixels to a square `size` crop around `box`.

    The crop is centred on the box centre; its side is the longer box side
    times (1 + margin).

    Args:
        box: (x0, y0, x1, y1) face box in image pixels.
        size: crop side in pixels (the model's input size).
        margin: extra context around the box, as a fraction of its longer side.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box).reshape(-1))
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    scale = size / side
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half = (size - 1) / 2.0
    return np.array([[scale, 0.0, half - scale * cx],
                     [0.0, scale, half - scale * cy]], dtype=np.float64)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Applies a 2x3 affine matrix to (..., 2) points; keeps the input dtype."""
    pts = np.asarray(points)
    m = np.asarray(matrix, dtype=np.float64)
    out = pts.astype(np.float64) @ m[:, :2].T + m[:, 2]
    return out.astype(pts.dtype if np.issubdtype(pts.dtype, np.floating) else np.float32)


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 least-squares similarity (scale, rotation, shift; no reflection) from `source` to
    `target` (L, 2) points.

    Points are read as complex numbers z = x + iy; the fit z -> a z + b has the closed form
    a = <s, t> / <s, s> over the centred points, b = mean(t) - a mean(s).
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    zs, zt = source[:, 0] + 1j * source[:, 1], target[:, 0] + 1j * target[:, 1]
    ms, mt = zs.mean(), zt.mean()
    cs, ct = zs - ms, zt - mt
    a = np.vdot(cs, ct) / max(float(np.vdot(cs, cs).real), 1e-12)
    b = mt - a * ms
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], np.float64)


def rotation_about(centre, angle: float) -> np.ndarray:
    """The 2x3 rotation by `angle` radians about `centre` (x, y): (1, 0) turns to (cos, sin), which
    on screen (y pointing down) is clockwise for a positive angle."""
    c, s = float(np.cos(angle)), float(np.sin(angle))
    linear = np.array([[c, -s], [s, c]])
    centre = np.asarray(centre, np.float64)
    return np.concatenate([linear, (centre - linear @ centre)[:, None]], axis=1)


def resize_points(points, from_size: int, to_size: int):
    """Crop pixels of a crop of side `from_size` in one of side `to_size` (the same region; pixel
    centres on integers, as `tf.image.resize` samples them)."""
    scale = float(to_size) / float(from_size)
    return (points + 0.5) * scale - 0.5
