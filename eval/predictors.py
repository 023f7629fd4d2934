"""What the evaluation runner calls: images + face boxes in, landmarks in image pixels out.

Crop models go through `rar_keras.inference.crop_landmarker.CropLandmarker` (the product's one
crop -> model -> image path); this module holds the protocol and the mean-shape baseline.

A predictor may also expose `predict_steps(images, boxes) -> dict[str, (N, L, 2)]`
(ordered stage name -> landmarks in image pixels, e.g. "detected", "step_0",
..., "step_T") and says so with `has_steps`; the runner's `--per-step` table
uses it when present.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from datasets.errors import DataError
from datasets.record import FaceRecord, landmark_box
from datasets.schemes import LandmarkScheme

@runtime_checkable
class Predictor(Protocol):
    """Anything with a landmark `scheme` and a batch `predict`."""

    scheme: LandmarkScheme

    def predict(self, images: Sequence[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        """(N, L, 2) landmarks in image pixels for N RGB uint8 images and (N, 4) boxes x0, y0, x1, y1."""
        ...


def _check_batch(images: Sequence[np.ndarray], boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
    return boxes


class MeanShapePredictor:
    """Baseline: the mean training shape placed in each face box.

    Each training shape is normalised to its tight landmark box (the unit
    square), the shapes are averaged, and the average is stretched to each box.

    Args:
        mean_shape_unit: (L, 2) mean shape in unit-box coordinates.
        scheme: the landmark scheme of the shape.

    Example:
        >>> predictor = MeanShapePredictor.from_records(train_records)
        >>> landmarks = predictor.predict(images, boxes)
    """

    def __init__(self, mean_shape_unit: np.ndarray, scheme: LandmarkScheme | None = None):
        self.mean_shape_unit = np.asarray(mean_shape_unit, dtype=np.float32)
        self.scheme = scheme

    @classmethod
    def from_records(cls, records: Sequence[FaceRecord], scheme: LandmarkScheme | None = None
                     ) -> "MeanShapePredictor":
        """Averages the training shapes of `records`, each normalised to its tight landmark box."""
        return cls.from_shapes([r.landmarks for r in records], scheme)

    @classmethod
    def from_shapes(cls, shapes: Sequence[np.ndarray], scheme: LandmarkScheme | None = None
                    ) -> "MeanShapePredictor":
        """Like `from_records`, from bare (L, 2) landmark arrays."""
        if len(shapes) == 0:
            raise DataError("no training faces to build the mean shape from")
        counts = {np.shape(s) for s in shapes}
        if len(counts) != 1:
            raise DataError(f"training faces have different landmark shapes {sorted(counts)}")
        stacked = np.stack(shapes).astype(np.float64)
        boxes = np.stack([landmark_box(s) for s in shapes]).astype(np.float64)
        size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
        unit = (stacked - boxes[:, None, :2]) / size[:, None, :]
        return cls(unit.mean(axis=0), scheme)

    def predict(self, images: Sequence[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        boxes = _check_batch(images, boxes)
        origin, size = boxes[:, None, :2], (boxes[:, 2:] - boxes[:, :2])[:, None, :]
        return (origin + self.mean_shape_unit[None] * size).astype(np.float32)
