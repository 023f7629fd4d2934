"""Crop -> model -> image: the one path from faces in images to landmarks in image pixels.

Every user of a crop model goes through `CropLandmarker`: the `FaceLandmarker` API, `predict`,
the evaluation CLIs and the comparison study. Each face is cut around its box with the model's
margin (`datasets.crops.crop_face`), or through a given image -> crop matrix (video mode's turned
crops), the crops run in batches, and the crop-pixel landmarks are mapped back through the
inverse of the crop's affine map.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from datasets.crops import crop_face, crop_with_matrix
from datasets.errors import DataError
from datasets.geometry import apply_affine, invert_affine

DEFAULT_BATCH_SIZE = 32


class CropLandmarker:
    """Faces in images through a crop model.

    Args:
        crop_model: `crops (N, S, S, 3) -> (N, L, 2)` crop pixels with `input_size`, `margin` and
            `scheme` (see `rar_keras.inference.crop_models`); optionally `predict(crops) -> dict`
            of all its outputs and `predict_steps(crops, **options) -> {stage: (N, L, 2), ...}`.
        batch_size: crops per model call.
        margin: context around each box (fraction of its longer side); default the model's.

    Example:
        >>> landmarker = CropLandmarker(load_crop_model("w300_mobile"))
        >>> points = landmarker.predict([image], np.array([[10, 20, 110, 130]]))
    """

    def __init__(self, crop_model, batch_size: int = DEFAULT_BATCH_SIZE, margin: Optional[float] = None):
        self.crop_model = crop_model
        self.batch_size = int(batch_size)
        self.input_size = int(crop_model.input_size)
        self.margin = float(crop_model.margin if margin is None else margin)
        self.scheme = crop_model.scheme

    @property
    def has_steps(self) -> bool:
        """Whether `predict_steps` is available (the crop model gives every refinement stage)."""
        return hasattr(self.crop_model, "predict_steps")

    def crops(self, images: Sequence[np.ndarray], boxes=None, matrices=None) -> tuple[np.ndarray, np.ndarray]:
        """The model crops (N, S, S, 3) uint8 and the crop -> image matrices (N, 2, 3), cut around
        `boxes` (N, 4) or through `matrices` (N, 2, 3) image -> crop pixels."""
        regions = _regions(len(images), boxes, matrices)
        crops, inverses = [], []
        for image, region in zip(images, regions):
            if region.shape == (4,):
                crop, matrix = crop_face(image, region, self.input_size, self.margin)
            else:
                crop, matrix = crop_with_matrix(image, region, self.input_size), region
            crops.append(crop)
            inverses.append(invert_affine(matrix))
        if not crops:
            return np.zeros((0, self.input_size, self.input_size, 3), np.uint8), np.zeros((0, 2, 3))
        return np.stack(crops).astype(np.uint8), np.stack(inverses)

    def predict(self, images: Sequence[np.ndarray], boxes) -> np.ndarray:
        """(N, L, 2) landmarks in image pixels for N RGB images and (N, 4) boxes x0, y0, x1, y1."""
        return self.predict_outputs(images, boxes)["landmarks"]

    def predict_outputs(self, images: Sequence[np.ndarray], boxes=None, matrices=None) -> dict[str, np.ndarray]:
        """Every output of the crop model: "landmarks" in image pixels, and whichever per-landmark
        values ("visibility", "confidence") and "attention" indices it gives; "quality" (N,) when the
        model has a quality model (`rar_keras.inference.quality`). Faces are given by `boxes`
        (N, 4) or by crop `matrices` (N, 2, 3)."""
        run = getattr(self.crop_model, "predict", None) or (lambda crops: {"landmarks": self.crop_model(crops)})
        outputs = self._collect(images, boxes, matrices, run)
        quality = getattr(self.crop_model, "quality", None)
        if quality is not None and "confidence" in outputs:
            outputs["quality"] = quality(outputs["confidence"], outputs.get("visibility"))
        return outputs

    def predict_steps(self, images: Sequence[np.ndarray], boxes=None, matrices=None, **options
                      ) -> dict[str, np.ndarray]:
        """{stage: (N, L, 2) image pixels} in the model's stage order, "attention" (N, T) indices and
        "visibility" (N, L); faces given as in `predict_outputs`.

        `options` go to the crop model's `predict_steps` (e.g. `init_mode`).
        """
        if not self.has_steps:
            raise NotImplementedError("this crop model gives no per-step predictions")
        return self._collect(images, boxes, matrices, lambda crops: self.crop_model.predict_steps(crops, **options))

    def _collect(self, images, boxes, matrices, run) -> dict[str, np.ndarray]:
        """`run(crops)` over every batch; (N, L, 2) entries are landmarks, mapped to image pixels."""
        collected: dict[str, list] = {}
        for crops, inverses in self._batches(images, boxes, matrices):
            for name, values in run(crops).items():
                is_points = np.ndim(values) == 3 and np.shape(values)[2] == 2
                collected.setdefault(name, []).append(to_image(values, inverses) if is_points else values)
        if not collected:
            return {"landmarks": np.zeros((0, self.scheme.num_points if self.scheme else 0, 2), np.float32)}
        return {name: np.concatenate(parts) for name, parts in collected.items()}

    def _batches(self, images: Sequence[np.ndarray], boxes, matrices):
        regions = _regions(len(images), boxes, matrices)
        given = "boxes" if boxes is not None else "matrices"
        for start in range(0, len(images), self.batch_size):
            part = slice(start, start + self.batch_size)
            yield self.crops(images[part], **{given: regions[part]})


def _regions(count: int, boxes, matrices) -> np.ndarray:
    """The faces' (N, 4) boxes or (N, 2, 3) crop matrices, checked against the image count."""
    if (boxes is None) == (matrices is None):
        raise DataError("give the faces either as boxes or as crop matrices")
    regions, what, shape = (boxes, "boxes", (4,)) if boxes is not None else (matrices, "crop matrices", (2, 3))
    regions = np.asarray(regions, dtype=np.float64 if boxes is None else np.float32)
    if regions.size % int(np.prod(shape)):
        raise DataError(f"{what} must be (N, {', '.join(map(str, shape))}), got shape {regions.shape}")
    regions = regions.reshape((-1,) + shape)
    if count != len(regions):
        raise DataError(f"{count} images but {len(regions)} {what}")
    return regions


def to_image(points, inverses) -> np.ndarray:
    """Crop-pixel landmarks (N, L, 2) mapped to image pixels by the crop -> image matrices (N, 2, 3)."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or points.shape[0] != len(inverses) or points.shape[2] != 2:
        raise DataError(f"the crop model returned shape {points.shape}; expected ({len(inverses)}, L, 2)")
    if len(points) == 0:
        return points
    return np.stack([apply_affine(p, inv) for p, inv in zip(points, inverses)]).astype(np.float32)
