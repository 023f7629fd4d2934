"""Crop geometry: the least-squares similarity against NumPy's solver, rotations, turned crops."""

import cv2
import numpy as np

from datasets.crops import crop_face, crop_with_matrix
from datasets.geometry import apply_affine, crop_matrix, rotation_about, similarity_matrix

SHAPE = np.random.default_rng(0).uniform(-50, 50, size=(68, 2))


def test_similarity_fit_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    angle, scale = 0.4, 1.3
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = SHAPE @ linear.T + [10.0, -5.0] + rng.normal(0, 2.0, SHAPE.shape)
    # x' = a x - b y + tx, y' = b x + a y + ty as a linear least-squares problem in (a, b, tx, ty).
    x, y = SHAPE[:, 0], SHAPE[:, 1]
    rows = np.concatenate([np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], 1),
                           np.stack([y, x, np.zeros_like(x), np.ones_like(x)], 1)])
    a, b, tx, ty = np.linalg.lstsq(rows, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)[0]
    np.testing.assert_allclose(similarity_matrix(SHAPE, target), [[a, -b, tx], [b, a, ty]], atol=1e-9)


def test_rotation_about_keeps_its_centre_and_turns_by_the_angle():
    centre = np.array([40.0, -7.0])
    turn = rotation_about(centre, np.pi / 2)
    np.testing.assert_allclose(apply_affine(centre[None], turn), centre[None], atol=1e-12)
    np.testing.assert_allclose(apply_affine((centre + [1.0, 0.0])[None], turn), (centre + [0.0, 1.0])[None],
                               atol=1e-12)


def test_a_turned_crop_puts_each_image_point_where_its_matrix_says():
    """Bright dots in the image land in the crop at the matrix's image of their centres."""
    image = np.zeros((300, 400, 3), np.uint8)
    dots = np.array([[150.0, 110.0], [200.0, 170.0], [185.0, 120.0]])
    for x, y in dots.astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    box = np.array([120, 80, 220, 200], np.float32)
    turned = np.vstack([crop_matrix(box, 128), [0, 0, 1]]) @ np.vstack([rotation_about((170, 140), 0.3), [0, 0, 1]])
    crop = crop_with_matrix(image, turned[:2], 128)[..., 0].astype(float)
    for x, y in apply_affine(dots, turned[:2]):
        rows, cols = np.mgrid[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5]
        weights = crop[rows, cols]
        centre = np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()
        np.testing.assert_allclose(centre, [x, y], atol=0.15)
    _, box_matrix = crop_face(image, box, 128)
    np.testing.assert_allclose(box_matrix, crop_matrix(box, 128))


def test_a_turned_crop_that_shrinks_a_lot_does_not_alias():
    checkers = (np.indices((400, 400)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, -1)
    turn = np.vstack([rotation_about((200, 200), 0.3), [0, 0, 1]])
    shrink = (np.diag([0.2, 0.2, 1.0]) @ turn)[:2]
    assert crop_with_matrix(checkers, shrink, 48)[8:40, 8:40].std() < 10      # a flat grey
    assert cv2.warpAffine(checkers, shrink, (48, 48))[8:40, 8:40].std() > 40  # what plain sampling gives
