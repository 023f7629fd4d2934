"""dlib imglab XML: `<image file=...><box top left width height><part name="00" x y/>...`.

Coordinates are 0-based pixels. A box `left top width height` becomes
(left, top, left + width, top + height). The scheme follows from the number of
parts (68 for dlib's own 300-W style files), ordered by their integer names.

Boxes without parts (faces boxed for a detector, not landmarked) and boxes
marked `ignore='1'` are skipped: a landmark record needs landmarks. Use
`count_boxes` to see how many were skipped.

Parsed with `xml.etree` (defusedxml is not installed): these are local files
the user chose; Python's expat refuses the classic entity-expansion attacks.
"""

from __future__ import annotations

import os
import pathlib
import xml.etree.ElementTree as ElementTree
from typing import Optional, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import read_image
from datasets.record import FaceRecord, xywh_to_corners
from datasets.schemes import LandmarkScheme, scheme_for_count

PathLike = Union[str, "os.PathLike[str]"]

BOX_ATTRIBUTES = ("left", "top", "width", "height")


def parse_dlib_xml(xml_file: PathLike) -> ElementTree.Element:
    """The `<images>` element of a dlib XML file."""
    source = os.fspath(xml_file)
    if not os.path.isfile(source):
        raise DataError(f"{source}: dlib XML file not found")
    try:
        root = ElementTree.parse(source).getroot()
    except ElementTree.ParseError as err:
        raise DataError(f"{source}: not valid XML ({err})") from None
    images = root.find("images")
    if images is None:
        raise DataError(f"{source}: expected dlib's <dataset><images><image file=...> layout, "
                        f"found root <{root.tag}> without <images>")
    return images


def count_boxes(xml_file: PathLike) -> tuple[int, int]:
    """(boxes with parts, boxes without parts or ignored) in a dlib XML file."""
    with_parts = skipped = 0
    for image in parse_dlib_xml(xml_file).iter("image"):
        for box in image.iter("box"):
            if box.find("part") is None or box.get("ignore") == "1":
                skipped += 1
            else:
                with_parts += 1
    return with_parts, skipped


def load_dlib_xml(xml_file: PathLike, image_root: Optional[PathLike] = None,
                  scheme: Optional[LandmarkScheme] = None) -> list[FaceRecord]:
    """Reads every landmarked box of a dlib XML file.

    Args:
        xml_file: e.g. `training_with_face_landmarks.xml`.
        image_root: folder `file` paths are relative to (default: the XML's folder,
            as dlib's tools do).
        scheme: expected scheme; None picks it from the number of parts.

    Raises:
        DataError: bad XML, non-numeric attributes, part names that are not
            0..L-1, a part count that matches no scheme, or a missing image.
    """
    source = os.fspath(xml_file)
    root = pathlib.Path(image_root) if image_root is not None else pathlib.Path(source).resolve().parent
    records = []
    for image in parse_dlib_xml(source).iter("image"):
        boxes = [box for box in image.iter("box") if box.find("part") is not None and box.get("ignore") != "1"]
        if not boxes:
            continue
        file_name = image.get("file")
        if not file_name:
            raise DataError(f"{source}: an <image> element has no 'file' attribute")
        image_path = root / file_name
        faces = [_face(box, f"{source}[{file_name} box {index}]", scheme) for index, box in enumerate(boxes)]
        if not image_path.is_file():
            raise DataError(f"{source}: image {file_name} not found under {root}; pass image_root")
        pixels = read_image(image_path)
        for landmarks, corners, face_scheme in faces:
            records.append(FaceRecord(image=pixels, landmarks=landmarks, box=corners, path=str(image_path),
                                      scheme=face_scheme.name))
    if not records:
        raise DataError(f"{source}: no <box> with <part> landmarks found")
    return records


def _face(box: ElementTree.Element, name: str, scheme: Optional[LandmarkScheme]
          ) -> tuple[np.ndarray, np.ndarray, LandmarkScheme]:
    """(landmarks, (x0, y0, x1, y1) box, scheme) of one `<box>` element."""
    landmarks = _parts(box, name)
    face_scheme = scheme or _scheme(len(landmarks), name)
    if len(landmarks) != face_scheme.num_points:
        raise DataError(f"{name}: {len(landmarks)} parts; expected {face_scheme.num_points} ({face_scheme.name})")
    return landmarks, xywh_to_corners(*_numbers(box, BOX_ATTRIBUTES, name)), face_scheme


def _parts(box: ElementTree.Element, name: str) -> np.ndarray:
    parts = {}
    for part in box.iter("part"):
        try:
            index = int(part.get("name", ""))
        except ValueError:
            raise DataError(f"{name}: part name {part.get('name')!r} is not an integer index") from None
        parts[index] = _numbers(part, ("x", "y"), name)
    if sorted(parts) != list(range(len(parts))):
        raise DataError(f"{name}: part names {sorted(parts)} are not 0..{len(parts) - 1}")
    return np.array([parts[i] for i in range(len(parts))], dtype=np.float32)


def _numbers(element: ElementTree.Element, keys: tuple[str, ...], name: str) -> tuple[float, ...]:
    try:
        return tuple(float(element.get(key)) for key in keys)
    except (TypeError, ValueError):
        raise DataError(f"{name}: <{element.tag}> needs numeric attributes {keys}, "
                        f"got {dict(element.attrib)}") from None


def _scheme(count: int, name: str) -> LandmarkScheme:
    try:
        return scheme_for_count(count)
    except ValueError as err:
        raise DataError(f"{name}: {err}") from None
