"""Landmark smoothing in the face's own frame: head motion passes through, per-point noise is filtered.

Filtering image coordinates directly trades jitter for lag: a filter strong enough to steady the
points also trails a moving head. Here each frame's landmarks P_t are split into the face's
motion and its shape. The motion is the similarity T_t (scale, rotation, shift) that best maps the
current smoothed shape onto P_t, a least-squares fit over all L points, so the noise of single
points averages out; the shape is P_t brought back by T_t's inverse. Only the shape goes through
the One Euro filter (its speed is that of an expression, not of the head), and the output is the
filtered shape under this frame's T_t, which is applied unfiltered: a still expression stays
still while the head moves. The shape's centre and size are free (T_t absorbs them), so each new
shape, and the filter's output, are brought to the previous shape's centre and RMS size:
without that, each frame's noise would inflate the shape a little (and averaging would shrink
it), and the drift compounds.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from rar_keras.inference.one_euro import OneEuroConfig, OneEuroFilter

# Chosen on clips of validation faces (`tools.benchmark_jitter`'s motion): a low cutoff at rest
# (0.3 Hz) steadies the shape most, and beta 5 lets an expression change through.
SHAPE_SMOOTHING = OneEuroConfig(min_cutoff=0.3, beta=5.0)


def fit_similarity(source: np.ndarray, target: np.ndarray) -> tuple[complex, complex]:
    """(a, b) of the least-squares similarity z -> a z + b from `source` to `target` points.

    Points are (L, 2) arrays read as complex numbers x + iy: `a` holds the scale and the rotation,
    `b` the shift. No reflection.
    """
    zs, zt = source[:, 0] + 1j * source[:, 1], target[:, 0] + 1j * target[:, 1]
    ms, mt = zs.mean(), zt.mean()
    cs, ct = zs - ms, zt - mt
    a = np.vdot(cs, ct) / max(float(np.vdot(cs, cs).real), 1e-12)
    return complex(a), complex(mt - a * ms)


def apply_similarity(a: complex, b: complex, points: np.ndarray) -> np.ndarray:
    """The (L, 2) points under z -> a z + b."""
    z = a * (points[:, 0] + 1j * points[:, 1]) + b
    return np.stack([z.real, z.imag], axis=-1)


def _matched(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`shape` moved and scaled to `reference`'s centroid and RMS radius."""
    centred = shape - shape.mean(0)
    radius = np.sqrt((centred ** 2).sum(-1).mean())
    reference_radius = np.sqrt(((reference - reference.mean(0)) ** 2).sum(-1).mean())
    return centred * (reference_radius / max(radius, 1e-12)) + reference.mean(0)


class ShapeStabilizer:
    """Smooths one face's landmarks over time (see the module notes).

    Args:
        config: the One Euro parameters of the shape filter, in units of the face's size (its
            `scale` is ignored), so one setting fits small and large faces.

    Example:
        >>> stabilizer = ShapeStabilizer(SHAPE_SMOOTHING)
        >>> steady = [stabilizer(points, t) for points, t in zip(stream, times)]
    """

    def __init__(self, config: OneEuroConfig = SHAPE_SMOOTHING):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forgets the face (a new face, or a cut)."""
        self._filter = OneEuroFilter(dataclasses.replace(self.config, scale=1.0))
        self._shape: Optional[np.ndarray] = None

    def __call__(self, points, timestamp: float) -> np.ndarray:
        """The smoothed (L, 2) landmarks of this frame; `timestamp` in seconds, increasing."""
        points = np.asarray(points, np.float64)
        if self._shape is None:
            centre = points.mean(0)
            size = max(float(np.linalg.norm(points.max(0) - points.min(0))), 1.0)
            self._shape = self._filter((points - centre) / size, timestamp)
            return points.copy()
        a, b = fit_similarity(self._shape, points)
        if abs(a) < 1e-9:                                           # all points on one spot: start again
            self.reset()
            return self(points, timestamp)
        shape = apply_similarity(1.0 / a, -b / a, points)          # the landmarks in the face's frame
        self._shape = _matched(self._filter(_matched(shape, self._shape), timestamp), self._shape)
        return apply_similarity(a, b, self._shape)
