"""Crop -> model -> image: crop-pixel landmarks come back in image pixels, per face and per stage."""

import numpy as np
import pytest

from datasets.errors import DataError
from datasets.geometry import apply_affine, crop_matrix, invert_affine, rotation_about
from datasets.schemes import COFW29
from rar_keras.inference.crop_landmarker import CropLandmarker

SIZE = 64
L = COFW29.num_points
CENTRE = (SIZE - 1) / 2.0


class CentreModel:
    """A crop model that puts every landmark at the crop centre (checks the crops it gets)."""

    input_size, margin, scheme = SIZE, 0.25, COFW29

    def __call__(self, crops):
        assert crops.dtype == np.uint8 and crops.shape[1:] == (SIZE, SIZE, 3)
        return np.full((len(crops), L, 2), CENTRE, np.float32)

    def predict_steps(self, crops, shift=0.0):
        n = len(crops)
        return {"detected": np.full((n, L, 2), CENTRE + shift), "attention": np.zeros((n, 3), np.int32)}


def _images_and_boxes():
    images = [np.zeros((120, 160, 3), np.uint8), np.zeros((300, 200, 3), np.uint8)]
    boxes = np.array([[20, 30, 80, 90], [50, 60, 150, 220]], np.float32)
    return images, boxes


def test_crop_centre_maps_back_to_each_box_centre():
    images, boxes = _images_and_boxes()
    landmarker = CropLandmarker(CentreModel(), batch_size=1)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(landmarker.predict(images, boxes), np.repeat(centres[:, None], L, 1), atol=1e-4)


def test_steps_are_mapped_and_attention_kept_as_indices():
    images, boxes = _images_and_boxes()
    landmarker = CropLandmarker(CentreModel())
    steps = landmarker.predict_steps(images, boxes, shift=4.0)
    assert set(steps) == {"detected", "attention"} and steps["attention"].shape == (2, 3)
    # A shift of 4 crop pixels is 4 / scale image pixels: the crop spans the box side * 1.25.
    scale = SIZE / ((boxes[:, 2:] - boxes[:, :2]).max(1) * 1.25)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    expected = centres[:, None] + (4.0 / scale)[:, None, None]
    np.testing.assert_allclose(steps["detected"], np.broadcast_to(expected, (2, L, 2)), atol=1e-3)


def test_margin_override_and_mismatched_inputs():
    images, boxes = _images_and_boxes()
    assert CropLandmarker(CentreModel(), margin=0.5).margin == 0.5
    with pytest.raises(DataError, match="2 images but 1 boxes"):
        CropLandmarker(CentreModel()).predict(images, boxes[:1])
    assert CropLandmarker(CentreModel()).predict([], np.zeros((0, 4))).shape == (0, L, 2)


def test_crop_matrices_give_the_same_faces_as_their_boxes():
    images, boxes = _images_and_boxes()
    landmarker = CropLandmarker(CentreModel(), batch_size=1)
    matrices = np.stack([crop_matrix(box, SIZE, CentreModel.margin) for box in boxes])
    np.testing.assert_allclose(landmarker.predict_outputs(images, matrices=matrices)["landmarks"],
                               landmarker.predict(images, boxes), atol=1e-4)
    turned = np.stack([np.vstack([m, [0, 0, 1]]) @ np.vstack([rotation_about((50, 60), 0.5), [0, 0, 1]])
                       for m in matrices])[:, :2]
    np.testing.assert_allclose(landmarker.predict_steps(images, matrices=turned)["detected"],
                               [apply_affine(np.full((L, 2), CENTRE), invert_affine(m)) for m in turned], atol=1e-4)
    with pytest.raises(DataError, match="either as boxes or as crop matrices"):
        landmarker.predict_outputs(images, boxes, matrices)
    with pytest.raises(DataError, match="2 images but 1 crop matrices"):
        landmarker.predict_outputs(images, matrices=matrices[:1])
    with pytest.raises(DataError, match=r"crop matrices must be \(N, 2, 3\), got shape \(2, 2, 2\)"):
        landmarker.predict_outputs(images, matrices=matrices[:, :, :2])
