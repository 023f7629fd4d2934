"""One entry point that picks the dataset reader from what it is given.

| given                                   | reader                       |
| --------------------------------------- | ---------------------------- |
| folder                                  | 300-W image + `.pts` pairs   |
| `.mat`                                  | COFW (v7.3 or v5)            |
| `.txt`, lines of 206 numbers + a path   | WFLW annotation file         |
| `.txt`, one relative path per line      | 300-W official list file     |
| `.json`                                 | COCO keypoints (mmpose)      |
| `.xml`                                  | dlib imglab XML              |
| `.pts`                                  | one 300-W face               |
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Union

from datasets.coco import load_coco
from datasets.cofw import load_cofw
from datasets.dlib_xml import load_dlib_xml
from datasets.errors import DataError
from datasets.images import IMAGE_EXTENSIONS
from datasets.record import FaceRecord
from datasets.w300 import load_folder, load_list, read_face
from datasets.wflw import is_wflw_line, load_wflw

PathLike = Union[str, "os.PathLike[str]"]

SUPPORTED = ("a folder of images with .pts files (300-W)", ".mat (COFW)",
             ".txt (WFLW annotations or a 300-W list file)", ".json (COCO keypoints)", ".xml (dlib)",
             ".pts (one 300-W face)")


def load_records(path: PathLike, split: Optional[str] = None,
                 image_root: Optional[PathLike] = None) -> list[FaceRecord]:
    """Reads the faces of any supported dataset file or folder.

    Args:
        path: a folder, or a `.mat`, `.txt`, `.json`, `.xml` or `.pts` file.
        split: "train" or "test", for `.mat` files only (default: the only
            split the file holds).
        image_root: folder the image paths of a `.txt`, `.json` or `.xml`
            file are relative to (each reader has a default).

    Raises:
        DataError: missing path, unsupported format (the supported ones are
            listed), `split` given for a format without splits, or what the
            chosen reader raises.
    """
    source = pathlib.Path(path)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder")
    suffix = source.suffix.lower()
    if split is not None and suffix != ".mat":
        raise DataError(f"{source}: split={split!r} applies to COFW .mat files only; this is "
                        f"{'a folder' if source.is_dir() else suffix or 'a file without suffix'}")
    if source.is_dir():
        return load_folder(source)
    if suffix == ".mat":
        return load_cofw(source, split)
    if suffix == ".txt":
        return _load_text(source, image_root)
    if suffix == ".json":
        return load_coco(source, image_root)
    if suffix == ".xml":
        return load_dlib_xml(source, image_root)
    if suffix == ".pts":
        return [_single_pts(source)]
    raise DataError(f"{source}: unsupported dataset format; supported: {'; '.join(SUPPORTED)}")


def _load_text(source: pathlib.Path, image_root: Optional[PathLike]) -> list[FaceRecord]:
    first = _first_line(source)
    if is_wflw_line(first):
        return load_wflw(source, image_root)
    if len(first.split()) == 1:
        return load_list(source, image_root)
    raise DataError(f"{source}: a .txt must be a WFLW annotation file (206 numbers and an image path per line) "
                    f"or a 300-W list file (one relative path per line); its first line has "
                    f"{len(first.split())} fields")


def _first_line(source: pathlib.Path) -> str:
    with open(source, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                return line
    raise DataError(f"{source}: file is empty")


def _single_pts(source: pathlib.Path) -> FaceRecord:
    for suffix in IMAGE_EXTENSIONS:
        for image in (source.with_suffix(suffix), source.with_suffix(suffix.upper())):
            if image.is_file():
                return read_face(image, source)
    raise DataError(f"{source}: no image of the same name beside it (tried {IMAGE_EXTENSIONS})")
