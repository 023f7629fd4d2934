"""AFLW-19 from mmpose's COCO-style JSON (`face_landmarks_aflw_{train,test}.json`).

AFLW's benchmark normalises the error by the face box, sqrt(w * h). mmpose
stores that normaliser as `box_size` (the side of the square face box centred
at `center`), so each record's box is that square and `sqrt(w * h)` of
`record.box` gives back `box_size` exactly; the file's own `bbox`, `box_size`
and `center` stay in `record.attributes`.
"""

from __future__ import annotations

import math
import os
from typing import Optional, Union

from datasets.coco import load_coco
from datasets.errors import DataError
from datasets.record import FaceRecord
from datasets.schemes import AFLW19

PathLike = Union[str, "os.PathLike[str]"]


def load_aflw(json_file: PathLike, image_root: Optional[PathLike] = None) -> list[FaceRecord]:
    """Reads AFLW-19 faces; see `datasets.coco.load_coco` for `image_root`.

    Raises:
        DataError: as `load_coco`, or the file's faces do not have 19 keypoints.
    """
    return load_coco(json_file, image_root=image_root, scheme=AFLW19)


def box_normaliser(record: FaceRecord) -> float:
    """AFLW's NME normaliser for one face: sqrt(w * h) of its box (mmpose's `box_size`)."""
    x0, y0, x1, y1 = (float(v) for v in record.box)
    if x1 <= x0 or y1 <= y0:
        raise DataError(f"{record.path}: box {record.box.tolist()} has no area; cannot normalise")
    return math.sqrt((x1 - x0) * (y1 - y0))
