"""The one record type every reader returns."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from datasets.errors import DataError


@dataclasses.dataclass
class FaceRecord:
    """One annotated face.

    Args:
        image: RGB pixels, uint8, (H, W, 3).
        landmarks: (L, 2) float32, 0-based pixel coordinates (x, y); pixel
            centres sit on integers.
        box: face box (x0, y0, x1, y1), float32, 0-based pixels.
        path: where the image came from (for error messages and reports).
        visibility: optional (L,) float32, 1 = visible, 0 = occluded.
        scheme: landmark scheme name, e.g. "300w68".
        attributes: optional per-face metadata from the annotation file, e.g.
            WFLW's pose/expression/... flags or AFLW's `box_size`.
    """

    image: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    path: str
    visibility: Optional[np.ndarray] = None
    scheme: str = ""
    attributes: Optional[dict] = None

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32)
        self.box = np.asarray(self.box, dtype=np.float32).reshape(-1)
        if self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2:
            raise DataError(f"{self.path}: landmarks must be (L, 2), got {self.landmarks.shape}")
        if not np.isfinite(self.landmarks).all():
            raise DataError(f"{self.path}: landmarks contain NaN or infinite coordinates")
        check_box(self.box, self.image.shape[:2], self.path)
        if self.visibility is not None:
            self.visibility = np.asarray(self.visibility, dtype=np.float32).reshape(-1)
            if self.visibility.shape[0] != self.landmarks.shape[0]:
                raise DataError(f"{self.path}: {self.visibility.shape[0]} visibility flags for "
                                f"{self.landmarks.shape[0]} landmarks")


def check_box(box: np.ndarray, image_hw: tuple[int, int], source: str) -> np.ndarray:
    """Validates an (x0, y0, x1, y1) box against an image of size (H, W)."""
    box = np.asarray(box, dtype=np.float32).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise DataError(f"{source}: face box must be 4 finite numbers x0,y0,x1,y1, got {box.tolist()}")
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise DataError(f"{source}: face box {box.tolist()} has zero or negative size (expected x1>x0, y1>y0)")
    h, w = image_hw
    if x1 < 0 or y1 < 0 or x0 > w - 1 or y0 > h - 1:
        raise DataError(f"{source}: face box {box.tolist()} lies outside the {w}x{h} image")
    return box


# MATLAB (and the 300-W / COFW annotation tools) count pixels from 1.
MATLAB_FIRST_PIXEL = 1.0


def from_one_based(coords: np.ndarray) -> np.ndarray:
    """Converts 1-based (MATLAB) pixel coordinates to 0-based ones, as float32.

    The single place where 300-W `.pts` files and COFW `.mat` files are moved
    to the 0-based convention of `FaceRecord`.
    """
    return (np.asarray(coords, dtype=np.float64) - MATLAB_FIRST_PIXEL).astype(np.float32)


def xywh_to_corners(x: float, y: float, width: float, height: float) -> np.ndarray:
    """An (x, y, width, height) box as (x0, y0, x1, y1) float32, with x1 = x + width."""
    return np.array([x, y, x + width, y + height], dtype=np.float32)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """The tight (x0, y0, x1, y1) box of a landmark array (the default protocol box)."""
    pts = np.asarray(landmarks, dtype=np.float32)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)
