"""The landmarker API and the predict CLI with a tiny untrained model: inputs, outputs, errors, folders, videos."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from datasets.errors import DataError
from tests.paths import REPO

NUM_POINTS = 68
BANK_SHAPES = 16
IMAGE_SIDE = 160
FACE_BOX = (40.0, 50.0, 120.0, 140.0)
GREY = 128
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


def test_a_bad_single_image_or_box_is_reported_before_the_model_loads(images, tmp_path):
    """The one image asked for is read and its box checked first: with a model that does not exist
    either, the error names the image or the box, never the model."""
    absent = tmp_path / "absent.keras"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(images["noisy"].read_bytes()[:200])
    bad_file = _predict(broken, "--model", absent, "--box", ",".join(str(v) for v in FACE_BOX))
    assert bad_file.returncode == 2 and "Traceback" not in bad_file.stderr, bad_file.stderr
    assert "broken.jpg" in bad_file.stderr and "absent.keras" not in bad_file.stderr
    bad_box = _predict(images["noisy"], "--model", absent, "--box", "5000,5000,5100,5100", "--out", tmp_path / "out")
    assert bad_box.returncode == 2 and "Traceback" not in bad_box.stderr, bad_box.stderr
    assert "outside the" in bad_box.stderr and "absent.keras" not in bad_box.stderr
    assert not (tmp_path / "out").exists()
    good = _predict(images["noisy"], "--model", absent, "--box", ",".join(str(v) for v in FACE_BOX))
    assert good.returncode == 2 and "absent.keras" in good.stderr      # a good image reaches the model


def test_a_folder_run_goes_on_past_a_bad_file(tiny_model_file, images, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.png").write_bytes(images["noisy"].read_bytes())
    (folder / "broken.jpg").write_bytes(images["noisy"].read_bytes()[:200])   # not a JPEG at all
    truncated = images["noisy"].read_bytes()
    (folder / "cut.png").write_bytes(truncated[:len(truncated) // 2])
    out = tmp_path / "out"
    box = ",".join(str(v) for v in FACE_BOX)
    result = _predict(folder, "--model", tiny_model_file, "--box", box, "--out", out)
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.json", "good.png"]
    assert "broken.jpg" in result.stderr and "cut.png" in result.stderr
    assert "2 of 3 file(s) failed" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_of_one_bad_file_is_a_folder_run(tiny_model_file, images, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(images["noisy"].read_bytes()[:200])
    result = _predict(folder, "--model", tiny_model_file, "--box", ",".join(str(v) for v in FACE_BOX))
    assert result.returncode == 1, result.stderr
    assert "1 of 1 file(s) failed" in result.stderr and "broken.jpg" in result.stderr


def test_cli_quiet_by_default(tiny_model_file, images):
    box = ",".join(str(v) for v in FACE_BOX)
    result = _predict(images["noisy"], "--model", tiny_model_file, "--box", box)
    assert result.returncode == 0
    assert result.stderr == "", result.stderr          # no TensorFlow, absl, LiteRT or OpenCV lines


@pytest.mark.slow
def test_cli_video_writes_a_line_per_frame_and_an_overlay_video(tiny_model_file, images, tmp_path):
    import cv2

    frames = 5
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (IMAGE_SIDE + 20, IMAGE_SIDE))
    noisy = cv2.imread(str(images["noisy"]))
    for t in range(frames):
        writer.write(np.roll(noisy, t, axis=1))
    writer.release()
    box = ",".join(str(v) for v in FACE_BOX)
    out = tmp_path / "out"
    result = _predict(video, "--model", tiny_model_file, "--box", box, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(frames))
    assert [line["timestamp_ms"] for line in lines] == [100.0 * t for t in range(frames)]
    assert all(len(line["faces"]) == 1 and len(line["faces"][0]["landmarks"]) == NUM_POINTS for line in lines)
    written = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
