"""EXIF orientation: photos are turned as OpenCV's own EXIF-aware decoding turns them."""

import struct

import cv2
import numpy as np
import pytest

from datasets.images import exif_orientation, read_image


def _jpeg_with_orientation(pixels_bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose APP1 segment holds an EXIF block with one tag: the orientation."""
    ok, encoded = cv2.imencode(".jpg", pixels_bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II" + struct.pack("<HI", 42, 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = encoded.tobytes()
    return data[:2] + app1 + data[2:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_opencvs_exif_decoding(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    pixels = np.kron(rng.integers(0, 255, (6, 4, 3)), np.ones((8, 8, 1))).astype(np.uint8)   # 48 x 32, blocky
    data = _jpeg_with_orientation(pixels, orientation)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    assert exif_orientation(data) == orientation
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    turned = read_image(path, orientation=True)
    assert turned.shape == expected.shape
    assert np.abs(turned.astype(int) - expected.astype(int)).max() <= 2
    stored = read_image(path)                       # the default keeps the stored pixels (datasets)
    assert stored.shape[:2] == (48, 32)


def test_no_exif_is_orientation_one():
    ok, encoded = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    assert exif_orientation(encoded.tobytes()) == 1
