"""How a distillation teacher sees the student's crops, and how its heatmaps land on the student's grid.

Both crops are centred on the same face box (`datasets.geometry.crop_matrix`); they differ in side
(input size) and in context (crop margin). Student crop pixels map to teacher crop pixels by a
scaling about the crop centre, so the teacher's input is the student's crop resampled, and the
teacher's conv8 logits are resampled back onto the student's heatmap cells. With `distill_native`
the training pipeline renders each crop at `native_render_size` instead, and the teachers see that
finer crop (a `CropFrame` with the student's margin) in place of the student's.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from datasets.augment import warp_batch
from datasets.crops import chain_affine
from datasets.geometry import invert_affine


class CropFrame(NamedTuple):
    """A crop's side and margin: what the functions below read of a `RARConfig` (a rendered crop of
    the training faces has the student's margin at another side)."""

    input_size: int
    margin: float


def native_render_size(student, teachers: Sequence) -> int:
    """The side of a crop with the student's margin whose pixels are as fine as the finest
    teacher's (never under the student's side): rendered at that side, every teacher sees its own
    input's detail."""
    sides = [teacher.input_size * (1.0 + student.margin) / (1.0 + teacher.margin) for teacher in teachers]
    return max([int(student.input_size)] + [int(math.ceil(side - 1e-6)) for side in sides])


def crop_scale(student, teacher) -> float:
    """Teacher crop pixels per student crop pixel; `student` is the frame of the crops given (a
    `RARConfig` or a `CropFrame`), `teacher` a `RARConfig`."""
    return (teacher.input_size / student.input_size) * (1.0 + student.margin) / (1.0 + teacher.margin)


def student_to_teacher_pixels(student, teacher) -> np.ndarray:
    """2x3 matrix from student crop pixels to teacher crop pixels (pixel centres on integers)."""
    scale = crop_scale(student, teacher)
    shift = (teacher.input_size - 1) / 2.0 - scale * (student.input_size - 1) / 2.0
    return np.array([[scale, 0.0, shift], [0.0, scale, shift]])


def teacher_to_student_cells(student, teacher) -> np.ndarray:
    """2x3 matrix from teacher heatmap cells to student heatmap cells: teacher cell -> teacher pixel
    -> student pixel -> student cell (a cell c of stride s covers crop pixel `(c + 0.5) s - 0.5`,
    `layers.coordinates`)."""
    teacher_pixels = _cells_to_pixels(teacher.heatmap_stride)
    student_cells = invert_affine(_cells_to_pixels(student.heatmap_stride))
    to_student = invert_affine(student_to_teacher_pixels(student, teacher))
    return chain_affine(student_cells, chain_affine(to_student, teacher_pixels))


def _cells_to_pixels(stride: int) -> np.ndarray:
    offset = 0.5 * stride - 0.5
    return np.array([[float(stride), 0.0, offset], [0.0, float(stride), offset]])


def _tiled(matrix: np.ndarray, like: tf.Tensor) -> tf.Tensor:
    return tf.tile(tf.constant(matrix, tf.float32)[None], [tf.shape(like)[0], 1, 1])


def teacher_view(images, student, teacher) -> tf.Tensor:
    """Crops (B, S, S, 3) of frame `student` (the student's, or a rendered `CropFrame`) as the
    teacher's crops of the same boxes (black beyond them)."""
    pixels = tf.cast(images, tf.float32)
    if teacher.margin == student.margin:
        if teacher.input_size == student.input_size:
            return pixels
        return tf.image.resize(pixels, [teacher.input_size] * 2, method="bilinear")
    return warp_batch(pixels, _tiled(student_to_teacher_pixels(student, teacher), pixels), teacher.input_size)


def on_student_grid(teacher_logits, student, teacher) -> tf.Tensor:
    """The teacher's conv8 logits (B, h, w, L) resampled on the student's heatmap cells (bilinear; a
    cell beyond the teacher's crop takes the nearest edge value)."""
    size = [student.heatmap_size] * 2
    if teacher.margin == student.margin:
        return tf.image.resize(teacher_logits, size, method="bilinear")
    return warp_batch(teacher_logits, _tiled(teacher_to_student_cells(student, teacher), teacher_logits),
                      student.heatmap_size, fill_mode="NEAREST")
