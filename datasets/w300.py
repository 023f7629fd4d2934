"""300-W: `.pts` landmark files beside their images, folders of them, and the official list files.

A `.pts` file reads::

    version: 1
    n_points:  68
    {
    96.857 145.674
    ...
    }

with 1-based pixel coordinates (MATLAB's convention), moved to 0-based once,
by `datasets.record.from_one_based`. The face box of every record is the tight
box of its landmarks (the ground-truth box protocol of 300-W evaluations).
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Iterator, Optional, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import IMAGE_EXTENSIONS, read_image
from datasets.record import FaceRecord, from_one_based, landmark_box
from datasets.schemes import W300, LandmarkScheme

PathLike = Union[str, "os.PathLike[str]"]

PTS_EXTENSION = ".pts"
OPEN_BRACE, CLOSE_BRACE = "{", "}"
N_POINTS_KEY = "n_points"
COORDS_PER_POINT = 2

log = logging.getLogger(__name__)


def read_pts(path: PathLike, scheme: Optional[LandmarkScheme] = W300) -> np.ndarray:
    """Reads a `.pts` file into (L, 2) float32 0-based pixel coordinates.

    Args:
        path: the `.pts` file.
        scheme: the expected scheme (its point count is enforced); None accepts
            any count that matches the file's own `n_points` header.

    Raises:
        DataError: missing/empty file, missing braces, a line that is not two
            numbers, a count different from `n_points` or from the scheme, NaN.
    """
    source = os.fspath(path)
    lines = _read_lines(source)
    header, body = _split_pts(lines, source)
    points = np.array([_parse_point(line, number, source) for number, line in body], dtype=np.float64)
    points = points.reshape(-1, COORDS_PER_POINT)
    declared = header.get(N_POINTS_KEY)
    if declared is not None and declared != len(points):
        raise DataError(f"{source}: header says n_points: {declared} but {len(points)} points were found")
    if scheme is not None and len(points) != scheme.num_points:
        raise DataError(f"{source}: expected {scheme.num_points} points ({scheme.name}), found {len(points)}")
    if not np.isfinite(points).all():
        row = int(np.flatnonzero(~np.isfinite(points).all(axis=1))[0])
        raise DataError(f"{source}: point {row} is not finite ({points[row].tolist()}); expected pixel coordinates")
    return from_one_based(points)


def find_pairs(folder: PathLike) -> tuple[list[tuple[pathlib.Path, pathlib.Path]], list[pathlib.Path]]:
    """Finds, recursively, images (.jpg .jpeg .png .ppm .bmp) with a `.pts` file of the same stem.

    Returns:
        (pairs, unpaired): sorted (image, pts) pairs, and the images that have no `.pts`.

    Raises:
        DataError: the folder is missing, or one `.pts` has several images.
    """
    root = pathlib.Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a folder of images with .pts files)")
    images: dict[pathlib.Path, list[pathlib.Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            images.setdefault(path.with_suffix(""), []).append(path)
    pairs, unpaired = [], []
    for stem, paths in images.items():
        pts = stem.with_suffix(PTS_EXTENSION)
        if not pts.is_file():
            unpaired.extend(paths)
            continue
        if len(paths) > 1:
            raise DataError(f"{pts}: several images share its name ({[p.name for p in paths]}); expected one")
        pairs.append((paths[0], pts))
    return pairs, unpaired


def iter_folder(folder: PathLike, scheme: LandmarkScheme = W300) -> Iterator[FaceRecord]:
    """Yields one record per image+.pts pair under `folder` (recursive), reading images lazily.

    Images without a `.pts` are skipped and their count logged.

    Raises:
        DataError: the folder holds no image+.pts pair, or a pair is bad.
    """
    pairs, unpaired = find_pairs(folder)
    if not pairs:
        raise DataError(f"no image+.pts pairs under {folder} ({len(unpaired)} images without .pts; "
                        f"expected images {IMAGE_EXTENSIONS} each with a .pts of the same name)")
    if unpaired:
        log.info("%s: skipped %d images without a .pts file", folder, len(unpaired))
    for image_path, pts_path in pairs:
        yield read_face(image_path, pts_path, scheme)


def load_folder(folder: PathLike, scheme: LandmarkScheme = W300) -> list[FaceRecord]:
    """All records of `iter_folder(folder, scheme)` as a list."""
    return list(iter_folder(folder, scheme))


def read_face(image_path: PathLike, pts_path: PathLike, scheme: LandmarkScheme = W300) -> FaceRecord:
    """One record from an image and its `.pts`, boxed by the tight landmark box."""
    landmarks = read_pts(pts_path, scheme)
    image = read_image(image_path)
    return FaceRecord(image=image, landmarks=landmarks, box=landmark_box(landmarks), path=os.fspath(image_path),
                      scheme=scheme.name)


def read_list(list_file: PathLike) -> list[str]:
    """The relative paths of an official 300-W list file (one image or .pts path per line)."""
    source = os.fspath(list_file)
    entries = [line.strip() for line in _read_lines(source) if line.strip()]
    if not entries:
        raise DataError(f"{source}: list file has no entries (expected one relative image or .pts path per line)")
    for entry in entries:
        if pathlib.PurePath(entry).suffix.lower() not in IMAGE_EXTENSIONS + (PTS_EXTENSION,):
            raise DataError(f"{source}: entry {entry!r} is not an image or .pts path; expected one relative "
                            f"path per line ending in one of {IMAGE_EXTENSIONS + (PTS_EXTENSION,)}")
    return entries


def default_list_root(list_file: PathLike) -> pathlib.Path:
    """Where a list's paths start: the parent of a `lists/` folder holding it, else the list's folder."""
    folder = pathlib.Path(list_file).resolve().parent
    return folder.parent if folder.name == "lists" else folder


def find_list_pairs(list_file: PathLike, root: Optional[PathLike] = None
                    ) -> tuple[list[tuple[pathlib.Path, pathlib.Path]], list[str]]:
    """Resolves the entries of an official 300-W list file (image list or landmark list) on disk.

    Each entry names a face by its relative path; its `.pts` is the same path with
    the `.pts` suffix and its image the listed file or, when that is missing, the
    same stem with any image suffix (the local copies are JPEG where lists say PNG).
    A path whose folder name repeats (`afw/afw/...`) is also tried without the
    repeat.

    Args:
        list_file: e.g. `300w/lists/helen_testset.txt`.
        root: folder the entries are relative to (default: `default_list_root`).

    Returns:
        (pairs, missing): (image, pts) paths in list order, and the entries not found.
    """
    base = pathlib.Path(root) if root is not None else default_list_root(list_file)
    pairs, missing = [], []
    for entry in read_list(list_file):
        pair = _locate(base / entry) or _locate(base / _collapse_repeats(entry))
        if pair is None:
            missing.append(entry)
        else:
            pairs.append(pair)
    return pairs, missing


def iter_list(list_file: PathLike, root: Optional[PathLike] = None, scheme: LandmarkScheme = W300,
              strict: bool = False) -> Iterator[FaceRecord]:
    """Yields the faces of an official 300-W list file, found as `find_list_pairs` does.

    Args:
        list_file: e.g. `300w/lists/helen_testset.txt`.
        root: folder the entries are relative to (default: `default_list_root`).
        scheme: landmark scheme of the `.pts` files.
        strict: raise on a listed face that is not on disk, instead of skipping
            it (skipped faces are counted in the log).

    Raises:
        DataError: a bad list, a listed face missing under `strict`, or none found at all.
    """
    base = pathlib.Path(root) if root is not None else default_list_root(list_file)
    pairs, missing = find_list_pairs(list_file, base)
    if missing and strict:
        raise DataError(f"{list_file}: {len(missing)} listed faces not found under {base}, "
                        f"e.g. {missing[0]} (image and .pts expected)")
    if not pairs:
        raise DataError(f"{list_file}: none of its {len(missing)} faces found under {base}; "
                        "pass the folder the listed paths are relative to")
    if missing:
        log.info("%s: %d of %d listed faces not found under %s, skipped", list_file, len(missing),
                 len(missing) + len(pairs), base)
    for image_path, pts_path in pairs:
        yield read_face(image_path, pts_path, scheme)


def load_list(list_file: PathLike, root: Optional[PathLike] = None, scheme: LandmarkScheme = W300,
              strict: bool = False) -> list[FaceRecord]:
    """All records of `iter_list(list_file, root, scheme, strict)` as a list."""
    return list(iter_list(list_file, root, scheme, strict))


def _collapse_repeats(entry: str) -> pathlib.PurePath:
    """`afw/afw/x.jpg` -> `afw/x.jpg`: the lists nest AFW one folder deeper than the released folders."""
    parts = pathlib.PurePath(entry).parts
    kept = [part for i, part in enumerate(parts) if i == 0 or part != parts[i - 1]]
    return pathlib.PurePath(*kept)


def _locate(listed: pathlib.Path) -> Optional[tuple[pathlib.Path, pathlib.Path]]:
    pts = listed.with_suffix(PTS_EXTENSION)
    if not pts.is_file():
        return None
    if listed.suffix.lower() in IMAGE_EXTENSIONS and listed.is_file():
        return listed, pts
    for suffix in IMAGE_EXTENSIONS:
        for candidate in (listed.with_suffix(suffix), listed.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate, pts
    return None


def _read_lines(source: str) -> list[str]:
    if not os.path.isfile(source):
        raise DataError(f"{source}: file not found")
    try:
        with open(source, encoding="utf-8", errors="strict") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise DataError(f"{source}: not a text file (expected UTF-8/ASCII text)") from None
    if not text.strip():
        raise DataError(f"{source}: file is empty")
    return text.splitlines()


def _split_pts(lines: list[str], source: str) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Header fields before `{` and the numbered lines between `{` and `}`."""
    stripped = [line.strip() for line in lines]
    if OPEN_BRACE not in stripped or CLOSE_BRACE not in stripped[stripped.index(OPEN_BRACE):]:
        raise DataError(f"{source}: malformed .pts, expected the points between a '{{' line and a '}}' line")
    start = stripped.index(OPEN_BRACE)
    end = stripped.index(CLOSE_BRACE, start)
    header = {}
    for number, line in enumerate(stripped[:start], start=1):
        key, sep, value = line.partition(":")
        if key.strip() == N_POINTS_KEY:
            try:
                header[N_POINTS_KEY] = int(value)
            except ValueError:
                raise DataError(f"{source}: line {number}: n_points must be an integer, "
                                f"got {value.strip()!r}") from None
    body = [(number, line) for number, line in enumerate(stripped[start + 1:end], start=start + 2) if line]
    return header, body


def _parse_point(line: str, number: int, source: str) -> tuple[float, float]:
    fields = line.split()
    if len(fields) != COORDS_PER_POINT:
        raise DataError(f"{source}: line {number}: expected two numbers 'x y', got {line!r}")
    try:
        return float(fields[0]), float(fields[1])
    except ValueError:
        raise DataError(f"{source}: line {number}: expected two numbers 'x y', got {line!r}") from None
