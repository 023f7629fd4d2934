"""COCO-style keypoint JSON, as mmpose writes face datasets (COFW, 300-W, AFLW, WFLW).

`images` give `id` and `file_name`; each entry of `annotations` gives
`image_id`, `keypoints` (x, y, v flat, 0-based pixels) and usually `bbox`
(x, y, w, h). The scheme follows from the keypoint count.

Visibility, per file: when some `v` equals 2, COCO's meaning holds (2 = visible,
1 = labelled but occluded, 0 = not labelled -> visibility 0), which is how
mmpose writes COFW; when no `v` is 2 (mmpose's 300-W, AFLW and WFLW write 1
everywhere), every labelled point (v >= 1) is visible.

Box, per annotation: a square of side `box_size` around `center` when both are
present (mmpose's AFLW, whose NME normaliser is that `box_size`), else `bbox`,
else the tight box of the labelled points. Crowd annotations and ones without
keypoints are skipped.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Optional, Sequence, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import read_image
from datasets.record import FaceRecord, landmark_box, xywh_to_corners
from datasets.schemes import LandmarkScheme, scheme_for_count

PathLike = Union[str, "os.PathLike[str]"]

VALUES_PER_KEYPOINT = 3  # x, y, v
V_VISIBLE = 2
V_LABELLED = 1
IMAGE_SUBFOLDER = "images"


def read_coco_json(path: PathLike) -> dict:
    """Parses a COCO JSON file and checks its `images` and `annotations` lists."""
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise DataError(f"{source}: COCO JSON file not found")
    try:
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{source}: expected a COCO object with 'images' and 'annotations' lists, found {found}")
    return data


def keypoint_count(data: dict, source: str) -> int:
    """The number of keypoints per annotation (the same for all of them)."""
    counts = {len(a.get("keypoints") or ()) for a in data["annotations"] if a.get("keypoints")}
    if len(counts) != 1 or next(iter(counts)) % VALUES_PER_KEYPOINT:
        raise DataError(f"{source}: 'keypoints' lengths {sorted(counts)}; expected one length, a multiple of 3 "
                        "(x, y, v per point)")
    return next(iter(counts)) // VALUES_PER_KEYPOINT


def image_root_candidates(json_file: PathLike) -> list[pathlib.Path]:
    """Folders tried when no image root is given: the JSON's folder and its `images/` subfolder."""
    folder = pathlib.Path(json_file).resolve().parent
    return [folder, folder / IMAGE_SUBFOLDER]


def annotation_box(annotation: dict, landmarks: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """The (x0, y0, x1, y1) box of one annotation: box_size+center, else bbox, else the landmark box."""
    if "box_size" in annotation and "center" in annotation:
        side = float(annotation["box_size"])
        cx, cy = (float(v) for v in annotation["center"])
        return xywh_to_corners(cx - side / 2, cy - side / 2, side, side)
    if annotation.get("bbox"):
        return xywh_to_corners(*(float(v) for v in annotation["bbox"]))
    return landmark_box(landmarks[labelled] if labelled.any() else landmarks)


def load_coco(json_file: PathLike, image_root: Optional[PathLike] = None,
              scheme: Optional[LandmarkScheme] = None) -> list[FaceRecord]:
    """Reads every face of a COCO keypoint JSON file.

    Args:
        json_file: the annotation file.
        image_root: folder `file_name` is relative to; by default the JSON's
            folder, then its `images/` subfolder.
        scheme: expected scheme; None picks it from the keypoint count.

    Raises:
        DataError: bad JSON, unknown keypoint count, an annotation whose
            image id is not listed, or an image not found.
    """
    source = os.fspath(json_file)
    data = read_coco_json(source)
    count = keypoint_count(data, source)
    if scheme is None:
        try:
            scheme = scheme_for_count(count)
        except ValueError as err:
            raise DataError(f"{source}: {err}") from None
    elif scheme.num_points != count:
        raise DataError(f"{source}: {count} keypoints per face; expected {scheme.num_points} ({scheme.name})")
    occlusion_coded = any(_has_visible_flag(a) for a in data["annotations"])
    files = {image.get("id"): image.get("file_name") for image in data["images"]}
    roots = [pathlib.Path(image_root)] if image_root is not None else image_root_candidates(source)
    pixels_by_id: dict = {}
    records = []
    for index, annotation in enumerate(data["annotations"]):
        if annotation.get("iscrowd") or not annotation.get("keypoints"):
            continue
        name = f"{source}[annotation {annotation.get('id', index)}]"
        image_id = annotation.get("image_id")
        if not files.get(image_id):
            raise DataError(f"{name}: image_id {image_id!r} has no entry with a file_name in 'images'")
        image_path = _find_image(roots, files[image_id], name)
        if image_id not in pixels_by_id:
            pixels_by_id[image_id] = read_image(image_path)
        try:
            keypoints = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, VALUES_PER_KEYPOINT)
            flags = keypoints[:, 2]
            landmarks = keypoints[:, :2].astype(np.float32)
            box = annotation_box(annotation, landmarks, flags >= V_LABELLED)
        except (TypeError, ValueError):
            raise DataError(f"{name}: 'keypoints' must be numbers (x, y, v per point) and 'bbox' four numbers "
                            "(x, y, w, h)") from None
        visible = flags >= (V_VISIBLE if occlusion_coded else V_LABELLED)
        records.append(FaceRecord(image=pixels_by_id[image_id], landmarks=landmarks, box=box,
                                  path=str(image_path), visibility=visible.astype(np.float32),
                                  scheme=scheme.name, attributes=_attributes(annotation)))
    if not records:
        raise DataError(f"{source}: no annotation with keypoints (expected 'annotations' with 'keypoints')")
    return records


def _has_visible_flag(annotation: dict) -> bool:
    keypoints = annotation.get("keypoints") or ()
    return any(v == V_VISIBLE for v in keypoints[VALUES_PER_KEYPOINT - 1::VALUES_PER_KEYPOINT])


def _attributes(annotation: dict) -> Optional[dict]:
    kept = {key: annotation[key] for key in ("id", "image_id", "bbox", "box_size", "center", "scale")
            if key in annotation}
    return kept or None


def _find_image(roots: Sequence[pathlib.Path], file_name: str, name: str) -> pathlib.Path:
    for root in roots:
        if (root / file_name).is_file():
            return root / file_name
    raise DataError(f"{name}: image {file_name} not found under {[str(r) for r in roots]}; pass image_root")
