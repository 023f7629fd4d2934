"""Reads one image file into RGB uint8 pixels, with a clear `DataError` for every bad file.

Decoding is OpenCV's (`cv2.imdecode`, `IMREAD_UNCHANGED`): pixels are taken as
stored, so an EXIF orientation tag is NOT applied (the benchmarks' landmarks
were annotated on the stored pixels, as MATLAB's `imread` reads them).

Before decoding, the header of a JPEG, PNG, BMP or PNM file is parsed for the
image size, and an image over `max_pixels` is refused without allocating it.
Up to the limit the image is decoded in full: the default of 64 megapixels is
about 200 MB of RGB pixels, which these machines afford. JPEG and PNG files are
also checked for their end marker (JPEG EOI, PNG IEND chunk): OpenCV decodes a
truncated file into an image with a grey bottom part and only prints a warning.
"""

from __future__ import annotations

import os
import struct
from typing import Optional, Union

import cv2
import numpy as np

from datasets.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]

# File extensions taken for images, everywhere (folders of faces, predict's folder runs).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm", ".webp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 64_000_000
MIN_SIDE = 16
RGB_CHANNELS = 3
# uint16 -> uint8: 65535 / 255 = 257 maps full scale onto full scale.
UINT16_TO_UINT8 = 257.0

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
JPEG_PREFIX = 0xFF
JPEG_SOS = 0xDA
# Start-of-frame markers that carry the image size (C4, C8 and CC are not frames).
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7 (and SOI/EOI themselves).
JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHUNK_OVERHEAD = 12  # length (4) + type (4) + CRC (4)
PNG_HEADER_SIZE = slice(16, 24)  # width, height: the first fields of the IHDR chunk
BMP_SIGNATURE = b"BM"
BMP_HEADER_SIZE = slice(18, 26)  # signed width, height of the BITMAPINFOHEADER
PNM_SIGNATURES = (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")
PNM_HEADER_MAX_BYTES = 512
JPEG_MARKER_BYTES = 2  # FF xx
JPEG_APP1 = 0xE1
EXIF_HEADER = b"Exif\x00\x00"
EXIF_ORIENTATION_TAG = 0x0112
JPEG_SEGMENT_HEAD = 4  # marker + 2-byte length (the length counts itself)


def read_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, orientation: bool = False) -> np.ndarray:
    """Reads an image file as RGB uint8 (H, W, 3).

    Greyscale becomes three equal channels, an alpha channel is dropped, 16-bit
    pixels are scaled to 8 bits (divided by 257) and OpenCV's BGR is turned to RGB.

    Args:
        path: the image file (JPEG, PNG, PPM/PGM, BMP or anything OpenCV decodes).
        max_pixels: largest width * height accepted; larger files are refused
            from their header, before decoding.
        orientation: apply a JPEG's EXIF orientation (how a camera says the photo is to be
            shown; what photo viewers do). Datasets keep it off: their landmarks were annotated
            on the stored pixels.

    Raises:
        DataError: the file is missing, empty, not an image, truncated, smaller
            than 16x16 or larger than `max_pixels`; the message names the file.
    """
    source = os.fspath(path)
    data = _read_bytes(source)
    size = header_size(data)
    if size is not None:
        check_image_size(size[1], size[0], source, max_pixels)
    check_complete(data, source)
    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        raise DataError(f"{source}: not an image or corrupt (OpenCV failed decoding it)") from None
    if pixels is None:
        raise DataError(f"{source}: not an image or corrupt (OpenCV could not decode it)")
    check_image_size(pixels.shape[0], pixels.shape[1], source, max_pixels)
    rgb = to_rgb_uint8(pixels, source, bgr=True)
    return apply_exif_orientation(rgb, exif_orientation(data)) if orientation else rgb


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a JPEG's bytes; 1 (as stored) when there is none."""
    if not data.startswith(JPEG_SOI):
        return 1
    for marker, start, length in _jpeg_segments(data):
        if marker != JPEG_APP1 or not data[start:start + length].startswith(EXIF_HEADER):
            continue
        tiff = data[start + len(EXIF_HEADER):start + length]
        order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
        if order is None or len(tiff) < 8:
            return 1
        (offset,) = struct.unpack(order + "I", tiff[4:8])
        if offset + 2 > len(tiff):
            return 1
        (count,) = struct.unpack(order + "H", tiff[offset:offset + 2])
        for entry in range(count):
            at = offset + 2 + 12 * entry
            if at + 12 > len(tiff):
                break
            tag, _, _, value = struct.unpack(order + "HHIH", tiff[at:at + 10])
            if tag == EXIF_ORIENTATION_TAG:
                return value if 1 <= value <= 8 else 1
        return 1
    return 1


def apply_exif_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels as EXIF orientation `orientation` says to show them (1 = as stored)."""
    flip_first = orientation in (2, 4, 5, 7)          # mirrored orientations
    turns = {1: 0, 2: 0, 3: 2, 4: 2, 5: 1, 6: 3, 7: 3, 8: 1}.get(orientation, 0)   # counter-clockwise
    if flip_first:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(np.rot90(pixels, turns))


def to_rgb_uint8(pixels: np.ndarray, source: str, bgr: bool = False) -> np.ndarray:
    """Converts greyscale, grey+alpha, RGB(A)/BGR(A), 8- or 16-bit pixels to RGB uint8 (H, W, 3).

    Args:
        pixels: (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4) array.
        source: name used in error messages.
        bgr: the channels are in OpenCV's BGR(A) order.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels / UINT16_TO_UINT8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise DataError(f"{source}: pixel type {pixels.dtype} is not supported (expected 8- or 16-bit integers)")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{source}: image array of shape {pixels.shape} is not (H, W) or (H, W, 1-4 channels)")
    channels = pixels.shape[2]
    if channels <= 2:  # grey or grey + alpha
        return np.ascontiguousarray(np.repeat(pixels[:, :, :1], RGB_CHANNELS, axis=2))
    colour = pixels[:, :, :RGB_CHANNELS]
    if bgr:
        colour = colour[:, :, ::-1]
    return np.ascontiguousarray(colour)


def check_image_size(height: int, width: int, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raises `DataError` for an image under 16 px a side or over `max_pixels` pixels."""
    if height < MIN_SIDE or width < MIN_SIDE:
        raise DataError(f"{source}: image is too small ({width}x{height}); expected at least {MIN_SIDE}x{MIN_SIDE}")
    if height * width > max_pixels:
        raise DataError(f"{source}: image is too large ({width}x{height} = {height * width} pixels); "
                        f"the limit is {max_pixels} pixels (argument max_pixels)")


def check_complete(data: bytes, source: str) -> None:
    """Raises `DataError` when a JPEG has no EOI marker after its scan or a PNG has no IEND chunk."""
    if data.startswith(JPEG_SOI) and not _jpeg_complete(data):
        raise DataError(f"{source}: JPEG file is truncated (no end-of-image marker FFD9 after the image data)")
    if data.startswith(PNG_SIGNATURE) and not _png_complete(data):
        raise DataError(f"{source}: PNG file is truncated (no IEND chunk)")


def header_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) read from a JPEG, PNG, BMP or PNM header; None for other or unreadable headers."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return struct.unpack(">II", data[PNG_HEADER_SIZE])
        if data.startswith(JPEG_SOI):
            return _jpeg_size(data)
        if data.startswith(BMP_SIGNATURE):
            width, height = struct.unpack("<ii", data[BMP_HEADER_SIZE])
            return abs(width), abs(height)
        if data[:2] in PNM_SIGNATURES:
            return _pnm_size(data)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _read_bytes(source: str) -> bytes:
    if not os.path.exists(source):
        raise DataError(f"{source}: image file not found")
    if os.path.isdir(source):
        raise DataError(f"{source}: is a folder, expected an image file")
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise DataError(f"{source}: cannot read image file ({err.strerror})") from None
    if not data:
        raise DataError(f"{source}: image file is empty (0 bytes)")
    return data


def _jpeg_segments(data: bytes):
    """Yields (marker, offset of its payload, payload length) up to and including the first SOS."""
    pos = len(JPEG_SOI)
    while pos + JPEG_SEGMENT_HEAD <= len(data):
        if data[pos] != JPEG_PREFIX:
            return
        marker = data[pos + 1]
        if marker == JPEG_PREFIX:  # fill byte
            pos += 1
            continue
        if marker in JPEG_STANDALONE:
            pos += JPEG_MARKER_BYTES
            continue
        length = struct.unpack(">H", data[pos + JPEG_MARKER_BYTES:pos + JPEG_SEGMENT_HEAD])[0]
        yield marker, pos + JPEG_SEGMENT_HEAD, length - (JPEG_SEGMENT_HEAD - JPEG_MARKER_BYTES)
        if marker == JPEG_SOS:
            return
        pos += JPEG_MARKER_BYTES + length


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    for marker, start, _ in _jpeg_segments(data):
        if marker in JPEG_SOF_MARKERS:
            # SOF payload: sample precision (1 byte), then height and width (2 bytes each).
            height, width = struct.unpack(">HH", data[start + 1:start + 5])
            return width, height
    return None


def _jpeg_complete(data: bytes) -> bool:
    scan_start = None
    for marker, start, length in _jpeg_segments(data):
        if marker == JPEG_SOS:
            scan_start = start + length
    if scan_start is None:
        return False
    # Entropy-coded data never holds FF D9 (FF is stuffed as FF 00), so an EOI
    # after the first scan marks the end of the image; trailing bytes are allowed.
    return data.find(JPEG_EOI, scan_start) >= 0


def _png_complete(data: bytes) -> bool:
    pos = len(PNG_SIGNATURE)
    while pos + PNG_CHUNK_OVERHEAD <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IEND":
            return True
        pos += PNG_CHUNK_OVERHEAD + length
    return False


def _pnm_size(data: bytes) -> Optional[tuple[int, int]]:
    fields: list[int] = []
    for line in data[len(PNM_SIGNATURES[0]):PNM_HEADER_MAX_BYTES].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            fields.append(int(token))
            if len(fields) == 2:
                return fields[0], fields[1]
    return None
