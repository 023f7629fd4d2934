"""What the evaluation runner calls: images + face boxes in, landmarks in image pixels out.

A predictor may also expose `predict_steps(images, boxes) -> dict[str, (N, L, 2)]`
(ordered stage name -> landmarks in image pixels, e.g. "detected", "step_0",
..., "step_T") and says so with `has_steps`; the runner's `--per-step` table
uses it when present.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from datasets.errors import DataError
from datasets.geometry import DEFAULT_MARGIN, apply_affine, invert_affine
from datasets.record import FaceRecord, landmark_box
from datasets.schemes import LandmarkScheme

DEFAULT_BATCH_SIZE = 32


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


class CropPredictor:
    """Crops each face around its box, runs a crop model in batches, maps back to the image.

    Args:
        crop_fn: `crops (N, S, S, 3) uint8 -> (N, L, 2)` landmarks in crop pixels.
        input_size: crop side S in pixels.
        margin: context around the box, as a fraction of its longer side
            (see `datasets.geometry.crop_matrix`).
        scheme: the landmark scheme the model predicts.
        batch_size: crops per `crop_fn` call.
        steps_fn: optional `crops -> {stage: (N, L, 2) crop pixels}` (e.g. the
            RAR model's `predict_steps`); entries of another shape are dropped.

    Example:
        >>> predictor = CropPredictor(lambda crops: model(crops), 128, 0.25, W300)
        >>> landmarks = predictor.predict([image], np.array([[10, 20, 110, 130]]))
    """

    def __init__(self, crop_fn: Callable[[np.ndarray], np.ndarray], input_size: int,
                 margin: float = DEFAULT_MARGIN, scheme: LandmarkScheme | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 steps_fn: Optional[Callable[[np.ndarray], dict]] = None):
        self.crop_fn = crop_fn
        self.input_size = int(input_size)
        self.margin = float(margin)
        self.scheme = scheme
        self.batch_size = int(batch_size)
        self.steps_fn = steps_fn

    @property
    def has_steps(self) -> bool:
        """Whether `predict_steps` is available (the crop model gave a `steps_fn`)."""
        return self.steps_fn is not None

    def _batches(self, images: Sequence[np.ndarray], boxes: np.ndarray):
        """Yields (crops (n, S, S, 3) uint8, inverse matrices (n, 2, 3)) per batch."""
        from datasets.crops import crop_face

        boxes = _check_batch(images, boxes)
        for start in range(0, len(images), self.batch_size):
            crops, inverses = [], []
            for image, box in zip(images[start:start + self.batch_size], boxes[start:start + self.batch_size]):
                crop, matrix = crop_face(image, box, self.input_size, self.margin)
                crops.append(crop)
                inverses.append(invert_affine(matrix))
            yield np.stack(crops).astype(np.uint8), inverses

    @staticmethod
    def _to_image(points, inverses) -> np.ndarray:
        points = np.asarray(points, dtype=np.float32)
        if points.ndim != 3 or points.shape[0] != len(inverses) or points.shape[2] != 2:
            raise DataError(f"the crop model returned shape {points.shape}; expected ({len(inverses)}, L, 2)")
        return np.stack([apply_affine(p, inv) for p, inv in zip(points, inverses)])

    def predict(self, images: Sequence[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        parts = [self._to_image(self.crop_fn(crops), inverses) for crops, inverses in self._batches(images, boxes)]
        if not parts:
            return np.zeros((0, self.scheme.num_points if self.scheme else 0, 2), np.float32)
        return np.concatenate(parts).astype(np.float32)

    def predict_steps(self, images: Sequence[np.ndarray], boxes: np.ndarray) -> dict[str, np.ndarray]:
        """{stage: (N, L, 2) image pixels}, in the crop model's stage order."""
        if self.steps_fn is None:
            raise NotImplementedError("this crop model gives no per-step predictions")
        collected: dict[str, list] = {}
        for crops, inverses in self._batches(images, boxes):
            for stage, points in self.steps_fn(crops).items():
                shape = np.shape(points)
                if len(shape) == 3 and shape[0] == len(inverses) and shape[2] == 2:
                    collected.setdefault(stage, []).append(self._to_image(points, inverses))
        return {stage: np.concatenate(parts) for stage, parts in collected.items()}


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
