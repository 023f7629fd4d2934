"""Flip test: a crop model's landmarks averaged over the crop and its mirror image.

The mirrored crop's prediction is mapped back (x -> S - 1 - x, left and right
landmarks swapped by the scheme's flip permutation) and averaged with the plain
one. A model's `landmark_offset` (the training annotations' convention, added to
every output) is not mirror-symmetric: it is taken off before the mirroring and put
back after, so that the average keeps it. It costs a second forward pass (the README
gives what it buys on validation faces).
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from datasets.schemes import LandmarkScheme

Prediction = Union[np.ndarray, dict]


def mirror_crops(crops) -> np.ndarray:
    """(N, S, S, C) crops flipped left-right."""
    return np.ascontiguousarray(np.asarray(crops)[:, :, ::-1])


def unmirror_landmarks(mirrored, scheme: LandmarkScheme, size: int, offset=(0.0, 0.0)) -> np.ndarray:
    """Landmarks (..., L, 2) predicted on a mirrored crop of side `size`, in the plain crop's frame.

    Args:
        mirrored: the prediction on the mirrored crop, in its crop pixels.
        scheme: the model's landmark scheme (its flip permutation).
        size: crop side S.
        offset: the model's `landmark_offset` in crop pixels (x, y), which its outputs include.
    """
    offset = np.asarray(offset, np.float32)
    return scheme.mirror_landmarks(np.asarray(mirrored, np.float32) - offset, size) + offset


def _unmirrored_mean(value, mirrored, scheme: LandmarkScheme, size: int, offset):
    """The mean of a plain and a mirrored-pass output: landmarks (N, L, 2) are mirrored back,
    per-landmark values (N, L) re-ordered; anything else (attention indices) is the plain pass's."""
    shape = np.shape(value)
    if len(shape) == 3 and shape[1] == scheme.num_points and shape[2] == 2:
        return (np.asarray(value, np.float32) + unmirror_landmarks(mirrored, scheme, size, offset)) / 2.0
    if len(shape) == 2 and shape[1] == scheme.num_points:
        return (np.asarray(value, np.float32) + np.asarray(mirrored, np.float32)[:, scheme.flip_permutation]) / 2.0
    return value


def flip_averaged(predict: Callable[[np.ndarray], Prediction], crops, scheme: LandmarkScheme,
                  size: int, offset=(0.0, 0.0)) -> Prediction:
    """`predict(crops)` averaged with its unmirrored prediction on the mirrored crops.

    Args:
        predict: crops (N, S, S, 3) -> (N, L, 2) crop pixels, or a dict whose (N, L, 2) entries
            are landmarks and (N, L) entries per-landmark values such as visibility (other
            entries, e.g. attention indices, come from the plain pass).
        crops: (N, S, S, 3) face crops.
        scheme: the model's landmark scheme.
        size: crop side S.
        offset: the model's `landmark_offset` in crop pixels (x, y), included in its landmarks.
    """
    crops = np.asarray(crops)
    plain, mirrored = predict(crops), predict(mirror_crops(crops))
    if not isinstance(plain, dict):
        return _unmirrored_mean(plain, mirrored, scheme, size, offset)
    return {key: _unmirrored_mean(value, mirrored[key], scheme, size, offset) for key, value in plain.items()}


class FlipAveraged:
    """A crop function wrapped with the flip test (for `.tflite` / `.onnx` runtimes and the like).

    Args:
        crop_fn: crops (N, S, S, 3) -> (N, L, 2) landmarks in crop pixels, or a dict of outputs
            (see `flip_averaged`).
        scheme: the model's landmark scheme.
        size: crop side S.
        offset: the model's `landmark_offset` in crop pixels (x, y), included in its landmarks.
    """

    def __init__(self, crop_fn: Callable[[np.ndarray], Prediction], scheme: LandmarkScheme, size: int,
                 offset=(0.0, 0.0)):
        self.crop_fn, self.scheme, self.size = crop_fn, scheme, int(size)
        self.offset = tuple(float(v) for v in offset)

    def __call__(self, crops) -> Prediction:
        return flip_averaged(self.crop_fn, crops, self.scheme, self.size, self.offset)
