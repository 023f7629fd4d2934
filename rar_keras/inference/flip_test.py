"""Flip test: a crop model's landmarks averaged over the crop and its mirror image.

The mirrored crop's prediction is mapped back (x -> S - 1 - x, left and right
landmarks swapped by the scheme's flip permutation) and averaged with the plain
one. It costs a second forward pass (the README gives what it buys on validation faces).
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from datasets.schemes import LandmarkScheme

Prediction = Union[np.ndarray, dict]


def mirror_crops(crops) -> np.ndarray:
    """(N, S, S, C) crops flipped left-right."""
    return np.ascontiguousarray(np.asarray(crops)[:, :, ::-1])


def _is_landmarks(value, scheme: LandmarkScheme) -> bool:
    shape = np.shape(value)
    return len(shape) == 3 and shape[1] == scheme.num_points and shape[2] == 2


def flip_averaged(predict: Callable[[np.ndarray], Prediction], crops, scheme: LandmarkScheme,
                  size: int) -> Prediction:
    """`predict(crops)` averaged with its unmirrored prediction on the mirrored crops.

    Args:
        predict: crops (N, S, S, 3) -> (N, L, 2) crop pixels, or a dict whose (N, L, 2) entries
            are landmarks (other entries, e.g. attention indices, come from the plain pass).
        crops: (N, S, S, 3) face crops.
        scheme: the model's landmark scheme.
        size: crop side S.
    """
    crops = np.asarray(crops)
    plain, mirrored = predict(crops), predict(mirror_crops(crops))
    if not isinstance(plain, dict):
        return (np.asarray(plain, np.float32) + scheme.mirror_landmarks(mirrored, size)) / 2.0
    return {key: (np.asarray(value, np.float32) + scheme.mirror_landmarks(mirrored[key], size)) / 2.0
            if _is_landmarks(value, scheme) else value for key, value in plain.items()}


class FlipAveraged:
    """A crop function wrapped with the flip test (for `.tflite` / `.onnx` runtimes and the like).

    Args:
        crop_fn: crops (N, S, S, 3) -> (N, L, 2) landmarks in crop pixels.
        scheme: the model's landmark scheme.
        size: crop side S.
    """

    def __init__(self, crop_fn: Callable[[np.ndarray], np.ndarray], scheme: LandmarkScheme, size: int):
        self.crop_fn, self.scheme, self.size = crop_fn, scheme, int(size)

    def __call__(self, crops) -> np.ndarray:
        return flip_averaged(self.crop_fn, crops, self.scheme, self.size)
