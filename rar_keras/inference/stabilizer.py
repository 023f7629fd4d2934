"""Landmark smoothing that moves with the face: steady points on a still face, no lag behind a moving one.

Filtering image coordinates directly trades jitter for lag: a filter strong enough to steady the
points also trails a moving head. Here the filter's memory is first moved by the face's motion
since the last frame, then blended with the new landmarks by a One Euro filter
(`inference.one_euro`). What the filter averages is therefore only what the motion does not
explain: the model's noise, and the face's own changes (an expression), which its speed term lets
through.

The motion comes from optical flow on the face's pixels when it can be measured
(`inference.motion`); otherwise it is the similarity that best maps the last smoothed landmarks
onto the new ones, so the head's pose passes unfiltered and only the shape is smoothed.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from datasets.geometry import similarity_matrix
from rar_keras.inference.one_euro import OneEuroConfig, OneEuroFilter

# Chosen on clips of validation faces (`tools.benchmark_jitter`'s motion), in units of the face's
# size: see the README's video-mode section.
SMOOTHING = OneEuroConfig(min_cutoff=0.5, beta=10.0)


class LandmarkStabilizer:
    """Smooths one face's landmarks over time (see the module notes).

    Args:
        config: the One Euro parameters, in units of the face's size (the diagonal of the track's
            first landmark box; the config's `scale` is ignored), so one setting fits small and
            large faces.

    Example:
        >>> stabilizer = LandmarkStabilizer(SMOOTHING)
        >>> steady = [stabilizer(points, t, motion) for points, t, motion in zip(stream, times, motions)]
    """

    def __init__(self, config: OneEuroConfig = SMOOTHING):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forgets the face (a new face, or a cut)."""
        self._filter: Optional[OneEuroFilter] = None
        self._last: Optional[np.ndarray] = None

    def __call__(self, points, timestamp: float, motion: Optional[np.ndarray] = None) -> np.ndarray:
        """The smoothed (L, 2) landmarks of this frame.

        Args:
            points: this frame's landmarks (L, 2), image pixels.
            timestamp: seconds, increasing.
            motion: the 2x3 map of image pixels from the last frame to this one (the face's motion),
                or None to take it from the landmarks themselves.
        """
        points = np.asarray(points, np.float64)
        if self._last is None:
            size = max(float(np.linalg.norm(points.max(0) - points.min(0))), 1.0)
            self._filter = OneEuroFilter(dataclasses.replace(self.config, scale=size))
            self._last = self._filter(points, timestamp)
            return points.copy()
        if motion is None:
            motion = similarity_matrix(self._last, points)
        self._filter.move(motion)
        self._last = self._filter(points, timestamp)
        return self._last.copy()
