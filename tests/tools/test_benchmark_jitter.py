"""The jitter benchmark's clips and measure: the true track follows the pixels; jitter is what it says."""

import numpy as np

from datasets.record import FaceRecord
from tools.benchmark_jitter import jitter, make_clip


def test_jitter_is_the_rms_deviation_of_each_points_error_from_its_mean():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (20, 5, 2))
    bias = rng.normal(0, 3, (1, 5, 2))                   # a constant error is no jitter
    shake = rng.normal(0, 1.5, (20, 5, 2))
    measured = jitter(truth + bias + shake, truth, norm=50.0)
    centred = shake - shake.mean(0)
    expected = 100 * np.mean([np.sqrt(np.mean(np.sum(centred[:, l] ** 2, -1))) for l in range(5)]) / 50.0
    assert abs(measured - expected) < 1e-9
    assert jitter(truth + bias, truth, norm=50.0) < 1e-9


def test_clip_landmarks_move_with_the_pixels():
    """A bright dot under each landmark stays under it in every frame of the clip."""
    image = np.zeros((200, 200, 3), np.uint8)
    landmarks = np.array([[60.0, 70.0], [140.0, 72.0], [100.0, 130.0]], np.float32)
    for x, y in landmarks.astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 255
    clip = make_clip(FaceRecord(image, landmarks, np.array([60, 70, 140, 130], np.float32), "dots"), 8, 0.0,
                     np.random.default_rng(0))
    for frame, points in zip(clip.frames, clip.landmarks):
        for x, y in points:
            patch = frame[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3]
            assert patch.max() > 100, (x, y)
