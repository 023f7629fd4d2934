"""Video mode's track bookkeeping: new faces join, tracked faces are not restarted by a detection,
faces that leave the frame or jump away are dropped."""

import numpy as np

from rar_keras.inference.tracking import FaceTracker

SHAPE = np.random.default_rng(0).uniform(0, 100, size=(68, 2)).astype(np.float32)


def _tracker_with_one_face() -> FaceTracker:
    tracker = FaceTracker(input_size=128, margin=0.25)
    assert tracker.add({"landmarks": (SHAPE + 200)[None]}, [0.9]).tolist() == [True]
    return tracker


def test_a_detection_of_a_tracked_face_keeps_its_track_and_a_new_face_joins():
    tracker = _tracker_with_one_face()
    first = tracker.tracks[0]
    added = tracker.add({"landmarks": np.stack([SHAPE + 203, SHAPE + 600])}, [0.8, 0.7])
    assert added.tolist() == [False, True]
    assert tracker.tracks[0] is first and len(tracker.tracks) == 2


def test_faces_that_leave_the_frame_or_jump_away_are_dropped():
    tracker = _tracker_with_one_face()
    tracker.add({"landmarks": (SHAPE + 600)[None]}, [0.9])
    tracker.add({"landmarks": (SHAPE + 900)[None]}, [0.9])
    frame = np.zeros((1000, 950, 3), np.uint8)
    tracker.crop_matrices(frame)                                  # no patches yet: expected = last landmarks
    moved = np.stack([SHAPE + 205,                                # followed
                      SHAPE + 250,                                # jumped: overlap under 0.3
                      SHAPE + [910, 900]])                        # overlaps, but 60 % right of the frame
    kept = tracker.keep({"landmarks": moved}, frame.shape[:2])
    assert kept.tolist() == [True, False, False]
    assert len(tracker.tracks) == 1
    np.testing.assert_array_equal(tracker.tracks[0].landmarks, SHAPE + 205)
