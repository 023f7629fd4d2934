"""COFW (29 points with occlusion flags) from its `.mat` files, MATLAB v7.3 (HDF5) or v5.

Keys per split: `IsTr`, `phisTr`, `bboxesTr` (train) and `IsT`, `phisT`,
`bboxesT` (test). Each `phis` row is x[0:29], y[29:58], occlusion[58:87]
(1 = occluded, stored here as visibility 0), in 1-based pixels. Boxes are
`x y w h` with a 1-based top-left corner; both move to 0-based the same way
(minus one, as mmpose's COFW conversion does), and x1 = x0 + w, y1 = y0 + h.

v7.3 files are HDF5: MATLAB stores arrays transposed (column-major), and the
images of the `Is*` cell are object references, (W, H) for grey and (3, W, H)
for colour. The format is detected from the file, never from its name. No
pickle is involved: h5py and `scipy.io.loadmat` read plain arrays.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import h5py
import numpy as np
import scipy.io

from datasets.errors import DataError
from datasets.images import check_image_size, to_rgb_uint8
from datasets.record import FaceRecord, from_one_based, xywh_to_corners
from datasets.schemes import COFW29

PathLike = Union[str, "os.PathLike[str]"]

SPLIT_KEYS = {
    "train": ("IsTr", "phisTr", "bboxesTr"),
    "test": ("IsT", "phisT", "bboxesT"),
}
NUM_POINTS = COFW29.num_points
PHIS_COLUMNS = 3 * NUM_POINTS  # x, y, occlusion
BOX_COLUMNS = 4
# Occlusion flags are 0 or 1; anything from one half up counts as occluded.
OCCLUDED_FROM = 0.5


def load_cofw(path: PathLike, split: Optional[str] = None) -> list[FaceRecord]:
    """Reads every face of one split of a COFW `.mat` file.

    Args:
        path: `COFW_train_color.mat`, `COFW_test_color.mat` (v7.3) or a v5 file
            with the same keys.
        split: "train" or "test"; None takes the only split the file holds.

    Raises:
        DataError: unreadable file, missing keys (found and expected ones are
            named), inconsistent array sizes, or bad images.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise DataError(f"{source}: COFW .mat file not found")
    if os.path.getsize(source) == 0:
        raise DataError(f"{source}: COFW .mat file is empty (0 bytes)")
    if h5py.is_hdf5(source):
        try:
            images, phis, boxes, keys = _read_hdf5(source, split)
        except DataError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise DataError(f"{source}: unreadable MATLAB v7.3 (HDF5) file ({err})") from None
    else:
        contents = _loadmat(source)
        keys = _pick_split(source, [k for k in contents if not k.startswith("__")], split)
        images = list(np.asarray(contents[keys[0]], dtype=object).ravel())
        phis = np.asarray(contents[keys[1]], dtype=np.float64)
        boxes = np.asarray(contents[keys[2]], dtype=np.float64)
    return _records(source, keys, images, np.atleast_2d(phis), np.atleast_2d(boxes))


def available_splits(keys) -> list[str]:
    """The splits whose three keys are all among `keys`."""
    return [name for name, needed in SPLIT_KEYS.items() if all(k in keys for k in needed)]


def _pick_split(source: str, keys: list[str], split: Optional[str]) -> tuple[str, str, str]:
    found = available_splits(keys)
    expected = " or ".join("/".join(v) for v in SPLIT_KEYS.values())
    if split is not None and split not in SPLIT_KEYS:
        raise DataError(f"{source}: unknown split {split!r}; expected one of {sorted(SPLIT_KEYS)}")
    if split is None:
        if len(found) == 1:
            return SPLIT_KEYS[found[0]]
        if found:
            raise DataError(f"{source}: holds both splits {found}; pass split='train' or split='test'")
        raise DataError(f"{source}: not a COFW file: keys found {sorted(keys)}, expected {expected}")
    if split not in found:
        raise DataError(f"{source}: no {split} split: keys found {sorted(keys)}, expected "
                        f"{'/'.join(SPLIT_KEYS[split])}")
    return SPLIT_KEYS[split]


def _read_hdf5(source: str, split: Optional[str]) -> tuple[list, np.ndarray, np.ndarray, tuple[str, str, str]]:
    with h5py.File(source, "r") as handle:
        keys = _pick_split(source, [k for k in handle.keys() if not k.startswith("#")], split)
        images = [_hdf5_image(handle[ref]) for ref in np.asarray(handle[keys[0]][()]).ravel()]
        phis = np.asarray(handle[keys[1]][()], dtype=np.float64).T
        boxes = np.asarray(handle[keys[2]][()], dtype=np.float64).T
    return images, phis, boxes, keys


def _loadmat(source: str) -> dict:
    try:
        return scipy.io.loadmat(source)
    except (ValueError, TypeError, OSError, NotImplementedError, scipy.io.matlab.MatReadError) as err:
        raise DataError(f"{source}: not a readable MATLAB .mat file (v5 or v7.3 expected): {err}") from None


def _hdf5_image(dataset) -> np.ndarray:
    """A MATLAB image from HDF5 back to (H, W) or (H, W, C): the stored axes are reversed."""
    pixels = np.asarray(dataset[()])
    return pixels.T if pixels.ndim == 2 else np.transpose(pixels, (2, 1, 0))


def _records(source: str, keys: tuple[str, str, str], images: list, phis: np.ndarray,
             boxes: np.ndarray) -> list[FaceRecord]:
    image_key, phis_key, boxes_key = keys
    if phis.shape[1] != PHIS_COLUMNS:
        raise DataError(f"{source}: {phis_key} has {phis.shape[1]} columns; expected {PHIS_COLUMNS} "
                        f"(x, y and occlusion of {NUM_POINTS} points)")
    if boxes.shape[1] != BOX_COLUMNS:
        raise DataError(f"{source}: {boxes_key} has {boxes.shape[1]} columns; expected {BOX_COLUMNS} (x y w h)")
    if not len(images) == len(phis) == len(boxes):
        raise DataError(f"{source}: {len(images)} images in {image_key}, {len(phis)} rows in {phis_key} and "
                        f"{len(boxes)} in {boxes_key}; expected the same count")
    records = []
    for index, (pixels, row, box) in enumerate(zip(images, phis, boxes)):
        name = f"{source}[{image_key} {index}]"
        pixels = np.asarray(pixels)
        check_image_size(pixels.shape[0], pixels.shape[1], name)
        landmarks = from_one_based(np.stack([row[:NUM_POINTS], row[NUM_POINTS:2 * NUM_POINTS]], axis=1))
        visibility = (row[2 * NUM_POINTS:] < OCCLUDED_FROM).astype(np.float32)
        x0, y0 = from_one_based(box[:2])
        records.append(FaceRecord(image=to_rgb_uint8(pixels, name), landmarks=landmarks,
                                  box=xywh_to_corners(x0, y0, box[2], box[3]), path=name,
                                  visibility=visibility, scheme=COFW29.name))
    return records
