"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): steady landmarks on a still face, little lag
when it moves.

A low-pass filter whose cutoff frequency rises with the signal's speed: `cutoff = min_cutoff +
beta * |speed|`. Slow motion (jitter) is smoothed hard; fast motion passes almost unfiltered.
Each coordinate of each landmark is filtered on its own, with the frame timestamps.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class OneEuroConfig:
    """Parameters of the One Euro filter.

    Args:
        min_cutoff: cutoff frequency (Hz) at rest; lower smooths more (and lags more on slow moves).
        beta: how fast the cutoff rises with speed; higher follows fast moves with less lag.
        derivative_cutoff: cutoff frequency (Hz) of the speed estimate.
        scale: coordinates are divided by this before filtering (e.g. the face's size in pixels),
            so that `beta` means the same for small and large faces.
    """

    min_cutoff: float = 1.0
    beta: float = 20.0
    derivative_cutoff: float = 1.0
    scale: float = 1.0

    def __post_init__(self):
        for name in ("min_cutoff", "derivative_cutoff", "scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"OneEuroConfig.{name} must be positive, got {getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"OneEuroConfig.beta must be >= 0, got {self.beta}")


def smoothing_factor(cutoff, elapsed: float):
    """The exponential smoothing factor of a first-order low-pass at `cutoff` Hz over `elapsed` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / elapsed)


class OneEuroFilter:
    """Filters a stream of arrays (e.g. (L, 2) landmarks) given with their timestamps in seconds.

    Args:
        config: the filter's parameters.

    Example:
        >>> smooth = OneEuroFilter(OneEuroConfig(scale=face_size))
        >>> steady = [smooth(points, t) for points, t in zip(stream, times)]
    """

    def __init__(self, config: OneEuroConfig = OneEuroConfig()):
        self.config = config
        self._previous: Optional[np.ndarray] = None
        self._speed: Optional[np.ndarray] = None
        self._time: Optional[float] = None

    def reset(self) -> None:
        """Forgets the stream (a new face, or a cut)."""
        self._previous = self._speed = self._time = None

    def move(self, matrix: np.ndarray) -> None:
        """Moves the filter's memory of (..., 2) points by a 2x3 affine map (the scene's motion
        since the last value), so the next value is blended with where the old points went."""
        if self._previous is None:
            return
        matrix = np.asarray(matrix, np.float64)
        self._previous = self._previous @ matrix[:, :2].T + matrix[:, 2] / self.config.scale
        self._speed = self._speed @ matrix[:, :2].T

    def __call__(self, value, timestamp: float) -> np.ndarray:
        value = np.asarray(value, np.float64) / self.config.scale
        if self._previous is None or self._time is None or timestamp <= self._time:
            self._previous, self._speed, self._time = value, np.zeros_like(value), float(timestamp)
            return value * self.config.scale
        elapsed = float(timestamp) - self._time
        speed = (value - self._previous) / elapsed
        a_speed = smoothing_factor(self.config.derivative_cutoff, elapsed)
        self._speed = a_speed * speed + (1.0 - a_speed) * self._speed
        cutoff = self.config.min_cutoff + self.config.beta * np.abs(self._speed)
        a_value = smoothing_factor(cutoff, elapsed)
        self._previous = a_value * value + (1.0 - a_value) * self._previous
        self._time = float(timestamp)
        return self._previous * self.config.scale
