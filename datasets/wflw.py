"""WFLW (98 points) from its official annotation text, `list_98pt_rect_attr_{train,test}.txt`.

Each line holds 196 coordinates (x0 y0 x1 y1 ... for 98 points, 0-based
pixels already), the face rectangle `x_min y_min x_max y_max`, six 0/1
attribute flags (pose, expression, illumination, make-up, occlusion, blur) and
the image path relative to the image root (`WFLW_images/`). The rectangle
becomes the record's box and the flags its `attributes`; WFLW has no
per-point occlusion, so `visibility` is None.
"""

from __future__ import annotations

import os
import pathlib
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import read_image
from datasets.record import FaceRecord
from datasets.schemes import WFLW98

PathLike = Union[str, "os.PathLike[str]"]

NUM_COORDS = 2 * WFLW98.num_points
BOX_FIELDS = 4
ATTRIBUTE_NAMES = ("pose", "expression", "illumination", "make_up", "occlusion", "blur")
NUM_NUMBERS = NUM_COORDS + BOX_FIELDS + len(ATTRIBUTE_NAMES)  # 206, then the image path
IMAGE_FOLDER = "WFLW_images"


def parse_line(line: str, source: str) -> tuple[np.ndarray, np.ndarray, dict, str]:
    """Splits one annotation line into (landmarks (98, 2), box (4,), attributes, relative image path).

    Raises:
        DataError: fewer than 207 fields, or a non-numeric value among the first 206.
    """
    fields = line.split()
    if len(fields) <= NUM_NUMBERS:
        raise DataError(f"{source}: expected {NUM_NUMBERS} numbers (196 coordinates, 4 box values, "
                        f"{len(ATTRIBUTE_NAMES)} attribute flags) and an image path, got {len(fields)} fields")
    try:
        numbers = np.array([float(value) for value in fields[:NUM_NUMBERS]], dtype=np.float64)
    except ValueError:
        raise DataError(f"{source}: the first {NUM_NUMBERS} fields must be numbers") from None
    landmarks = numbers[:NUM_COORDS].reshape(WFLW98.num_points, 2).astype(np.float32)
    box = numbers[NUM_COORDS:NUM_COORDS + BOX_FIELDS].astype(np.float32)
    flags = numbers[NUM_COORDS + BOX_FIELDS:].astype(int)
    attributes = dict(zip(ATTRIBUTE_NAMES, (int(flag) for flag in flags)))
    return landmarks, box, attributes, " ".join(fields[NUM_NUMBERS:])


def is_wflw_line(line: str) -> bool:
    """Whether a text line looks like a WFLW annotation (206 numbers, then a path)."""
    fields = line.split()
    if len(fields) <= NUM_NUMBERS:
        return False
    try:
        [float(value) for value in fields[:NUM_NUMBERS]]
    except ValueError:
        return False
    return True


def image_root_candidates(annotation_file: PathLike) -> list[pathlib.Path]:
    """Folders tried when no image root is given.

    The annotation's folder, then a `WFLW_images/` folder in it or up to two levels above.
    """
    folder = pathlib.Path(annotation_file).resolve().parent
    parents = [folder, *list(folder.parents)[:2]]
    return [folder] + [parent / IMAGE_FOLDER for parent in parents]


def iter_wflw(annotation_file: PathLike, image_root: Optional[PathLike] = None) -> Iterator[FaceRecord]:
    """Yields one record per annotation line, reading each image when its record is made.

    Args:
        annotation_file: `list_98pt_rect_attr_train.txt` or `..._test.txt`.
        image_root: folder the image paths are relative to; by default the first
            of `image_root_candidates` that holds the first listed image.

    Raises:
        DataError: a malformed line (named by number) or an image not found.
    """
    source = os.fspath(annotation_file)
    lines = _annotation_lines(source)
    roots = [pathlib.Path(image_root)] if image_root is not None else image_root_candidates(source)
    root = None
    for number, line in lines:
        name = f"{source}:{number}"
        landmarks, box, attributes, relative = parse_line(line, name)
        root = root or _find_root(roots, relative, name)
        image_path = root / relative
        yield FaceRecord(image=read_image(image_path), landmarks=landmarks, box=box, path=str(image_path),
                         scheme=WFLW98.name, attributes=attributes)


def load_wflw(annotation_file: PathLike, image_root: Optional[PathLike] = None) -> list[FaceRecord]:
    """All records of `iter_wflw(annotation_file, image_root)` as a list."""
    return list(iter_wflw(annotation_file, image_root))


def _annotation_lines(source: str) -> list[tuple[int, str]]:
    if not os.path.isfile(source):
        raise DataError(f"{source}: WFLW annotation file not found")
    with open(source, encoding="utf-8", errors="replace") as handle:
        lines = [(number, line) for number, line in enumerate(handle, start=1) if line.strip()]
    if not lines:
        raise DataError(f"{source}: WFLW annotation file is empty")
    return lines


def _find_root(roots: Sequence[pathlib.Path], relative: str, name: str) -> pathlib.Path:
    for root in roots:
        if (root / relative).is_file():
            return root
    raise DataError(f"{name}: image {relative} not found under {[str(r) for r in roots]}; "
                    "pass image_root (the WFLW_images folder)")
