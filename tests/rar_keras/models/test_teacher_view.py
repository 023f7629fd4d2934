"""A distillation teacher's view of the student's crops, and its heatmaps on the student's grid, against
the crop geometry computed with NumPy from `datasets.geometry.crop_matrix`."""

import types

import numpy as np
import pytest

from datasets.geometry import apply_affine, crop_matrix, invert_affine
from rar_keras.models import teacher_view

BOX = (40.0, 30.0, 140.0, 150.0)                          # x0, y0, x1, y1 in image pixels
RAMP = np.array([0.6, 0.9, 20.0])                         # intensity a x + b y + c at image point (x, y)


def _config(size, margin, stride=4):
    return types.SimpleNamespace(input_size=size, margin=margin, heatmap_stride=stride, heatmap_size=size // stride)


def _image_points(side, matrix_to_crop):
    """Image coordinates (side, side, 2) of every pixel centre of a crop."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64)
    return apply_affine(np.stack([xs, ys], -1), invert_affine(matrix_to_crop))


def _ramp(points):
    return points[..., 0] * RAMP[0] + points[..., 1] * RAMP[1] + RAMP[2]


@pytest.mark.parametrize("teacher_margin", [0.15, 0.25, 0.4])
def test_the_teacher_sees_the_same_face_box_at_its_own_size_and_margin(teacher_margin):
    student, teacher = _config(64, 0.15), _config(96, teacher_margin)
    to_student, to_teacher = crop_matrix(BOX, 64, 0.15), crop_matrix(BOX, 96, teacher_margin)
    # A linear image: bilinear resampling reproduces it exactly wherever all four neighbours exist.
    student_crop = np.repeat(_ramp(_image_points(64, to_student))[None, ..., None], 3, -1).astype(np.float32)
    seen = teacher_view.teacher_view(student_crop, student, teacher).numpy()[0, ..., 0]
    assert seen.shape == (96, 96)
    in_student = apply_affine(_image_points(96, to_teacher), to_student)      # student pixel of each teacher pixel
    interior = np.all((in_student >= 0) & (in_student <= 63), -1)
    expected = _ramp(_image_points(96, to_teacher))
    np.testing.assert_allclose(seen[interior], expected[interior], atol=2e-3)
    outside = np.any((in_student < -1) | (in_student > 64), -1)
    if teacher_margin > student.margin:                    # more context than the student's crop holds
        assert outside.any() and np.all(seen[outside] == 0)
    else:
        assert not outside.any()


@pytest.mark.parametrize("teacher_margin", [0.15, 0.25, 0.4])
def test_the_teachers_heatmaps_land_on_the_same_image_points_of_the_student_grid(teacher_margin):
    student, teacher = _config(64, 0.15), _config(96, teacher_margin)
    to_student, to_teacher = crop_matrix(BOX, 64, 0.15), crop_matrix(BOX, 96, teacher_margin)

    def cell_image_points(config, to_crop):
        cells = np.mgrid[0:config.heatmap_size, 0:config.heatmap_size][::-1].transpose(1, 2, 0).astype(np.float64)
        return apply_affine((cells + 0.5) * config.heatmap_stride - 0.5, invert_affine(to_crop))

    # Logits that are linear in the image position of each cell (one channel per coordinate).
    teacher_logits = cell_image_points(teacher, to_teacher)[None].astype(np.float32)
    on_grid = teacher_view.on_student_grid(teacher_logits, student, teacher).numpy()[0]
    assert on_grid.shape == (16, 16, 2)
    expected = cell_image_points(student, to_student)
    # Student cells whose teacher position has all four neighbouring cells inside the teacher's grid.
    student_cells = np.indices((16, 16))[::-1].transpose(1, 2, 0).astype(np.float64)
    teacher_cells = apply_affine(student_cells, invert_affine(teacher_view.teacher_to_student_cells(student, teacher)))
    interior = np.all((teacher_cells >= 0) & (teacher_cells <= teacher.heatmap_size - 1), -1)
    assert interior.mean() > 0.7
    np.testing.assert_allclose(on_grid[interior], expected[interior], atol=1e-3)


def test_the_matrices_compose_the_two_crop_matrices():
    student, teacher = _config(112, 0.15), _config(192, 0.25, stride=4)
    to_student, to_teacher = crop_matrix(BOX, 112, 0.15), crop_matrix(BOX, 192, 0.25)
    points = np.random.default_rng(0).uniform(0, 112, (20, 2))
    np.testing.assert_allclose(apply_affine(points, teacher_view.student_to_teacher_pixels(student, teacher)),
                               apply_affine(apply_affine(points, invert_affine(to_student)), to_teacher), atol=1e-9)
    assert teacher_view.crop_scale(student, teacher) == pytest.approx(192 / 112 * 1.15 / 1.25)


def test_the_render_side_matches_the_finest_teacher_pixels():
    student = _config(112, 0.25)
    assert teacher_view.native_render_size(student, [_config(192, 0.25), _config(160, 0.25)]) == 192
    # A teacher with more context: its 192 px span 1.4 / 1.25 of the student's crop, so the
    # student's crop at its pixel scale is 192 * 1.25 / 1.4 = 171.4 px, rounded up.
    assert teacher_view.native_render_size(student, [_config(192, 0.4)]) == 172
    assert teacher_view.native_render_size(student, [_config(96, 0.25)]) == 112

