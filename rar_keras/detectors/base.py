"""What every face detector shares: the `FaceDetector` protocol and the box adjustment.

A detector returns face boxes in *landmark-box convention*: the tight box of
the 68 landmarks the model was trained on (it crops that box plus its own
margin). Raw detector boxes are wider/taller and shifted (a BlazeFace box ends
at the eyebrows, not at the chin), so each built-in detector maps its raw boxes
through a measured `BoxAdjustment`; see `tools/fit_box_adjustment.py`.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np


BOX_DIMS = 4
DEFAULT_SCORE_THRESHOLD = 0.5


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces in an RGB uint8 image.

    `detect(image)` returns (N, 4) float32 boxes x0, y0, x1, y1 in image pixels
    (pixel centres on integers; landmark-box convention, see the module notes)
    and (N,) float32 scores in [0, 1], best first. No face: two empty arrays.
    """

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclasses.dataclass(frozen=True)
class BoxAdjustment:
    """Maps a raw detector box to the tight landmark box: shift the centre, scale the sides.

    With a raw box of centre (cx, cy) and size (w, h), the adjusted box has centre
    (cx + shift_x * w, cy + shift_y * h) and size (scale_x * w, scale_y * h).

    Args:
        scale_x, scale_y: landmark-box side / detector-box side.
        shift_x, shift_y: (landmark-box centre - detector-box centre) / detector-box side.

    Example:
        >>> tight = BoxAdjustment(0.9, 1.1, 0.0, 0.08).apply(raw_boxes)
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) raw boxes -> (N, 4) float32 adjusted boxes."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, BOX_DIMS)
        size = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0 + size * [self.shift_x, self.shift_y]
        half = size * [self.scale_x, self.scale_y] / 2.0
        return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)

    @classmethod
    def fit(cls, detected: np.ndarray, target: np.ndarray) -> "BoxAdjustment":
        """The mean scale and shift taking each `detected` box to its `target` box ((N, 4) each)."""
        detected = np.asarray(detected, dtype=np.float64).reshape(-1, BOX_DIMS)
        target = np.asarray(target, dtype=np.float64).reshape(-1, BOX_DIMS)
        if len(detected) == 0 or detected.shape != target.shape:
            raise ValueError(f"need matching non-empty box arrays, got {detected.shape} and {target.shape}")
        size = detected[:, 2:] - detected[:, :2]
        scale = (target[:, 2:] - target[:, :2]) / size
        shift = ((target[:, :2] + target[:, 2:]) - (detected[:, :2] + detected[:, 2:])) / 2.0 / size
        (sx, sy), (dx, dy) = scale.mean(axis=0), shift.mean(axis=0)
        return cls(float(sx), float(sy), float(dx), float(dy))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of (K, 4) boxes."""
    box = np.asarray(box, dtype=np.float64).reshape(BOX_DIMS)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, BOX_DIMS)
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def no_faces() -> tuple[np.ndarray, np.ndarray]:
    """The empty detection: (0, 4) boxes and (0,) scores."""
    return np.zeros((0, BOX_DIMS), np.float32), np.zeros((0,), np.float32)
