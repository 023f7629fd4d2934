"""Optical-flow motion: a known similarity between two frames is recovered; no texture, no motion."""

import cv2
import numpy as np

from datasets.geometry import apply_affine, rotation_about
from rar_keras.inference.motion import estimate_motion, face_patch

BOX = np.array([140, 100, 260, 240], np.float32)


def _textured_frame() -> np.ndarray:
    rng = np.random.default_rng(5)
    grey = cv2.GaussianBlur(rng.integers(0, 255, (360, 420), dtype=np.uint8), (7, 7), 0)
    return np.repeat(grey[..., None], 3, axis=-1)


def test_a_known_motion_is_recovered_to_a_tenth_of_a_pixel():
    frame = _textured_frame()
    motion = rotation_about((200, 170), 0.03)
    motion[:, :2] *= 1.02
    motion[:, 2] += [3.5, -2.25]
    moved = cv2.warpAffine(frame, motion, frame.shape[1::-1], flags=cv2.INTER_LINEAR)
    estimated = estimate_motion(face_patch(frame, BOX), moved)
    assert estimated is not None
    corners = np.array([[140, 100], [260, 100], [140, 240], [260, 240]], np.float64)
    assert np.abs(apply_affine(corners, estimated) - apply_affine(corners, motion)).max() < 0.1


def test_a_flat_frame_or_a_tiny_face_gives_no_motion():
    flat = np.full((360, 420, 3), 128, np.uint8)
    assert estimate_motion(face_patch(flat, BOX), flat) is None
    assert face_patch(flat, [10, 10, 12, 13]) is None
