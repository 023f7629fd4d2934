"""Video mode: faces followed from frame to frame, the previous landmarks giving the next crop.

A face found by the detector becomes a track. On the next frame it is cropped around the tight
box of its previous (unsmoothed) landmarks, one model pass, no detector: cheaper than detecting
every frame, and steadier, since the crop follows the face rather than a detector's box. A track
is dropped when the face is lost: its quality (when the model has a calibrated one) falls under
`min_quality`, or its new landmark box barely overlaps the previous one. With no track left, the
detector runs again (`redetect_every` also re-runs it periodically, to pick up new faces). The
output landmarks are smoothed per track in the face's own frame (`inference.stabilizer`): the
head's motion passes through, the shape goes through a One Euro filter.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from datasets.record import landmark_box
from rar_keras.detectors.base import box_iou
from rar_keras.inference.one_euro import OneEuroConfig
from rar_keras.inference.stabilizer import SHAPE_SMOOTHING, ShapeStabilizer

MIN_BOX_OVERLAP = 0.3      # a new landmark box overlapping the previous one less than this: the face is lost


@dataclasses.dataclass
class Track:
    """One followed face.

    Args:
        landmarks: the last unsmoothed landmarks (L, 2), image pixels: the next crop comes from them.
        smoother: its stabilizer.
        score: the detector's score when the track started.
    """

    landmarks: np.ndarray
    smoother: ShapeStabilizer
    score: Optional[float]


class FaceTracker:
    """The state of video mode (see the module notes); `FaceLandmarker.detect_for_video` drives it.

    Args:
        smoothing: the One Euro parameters of the shape filter (`inference.stabilizer`), or None for
            no smoothing.
        min_quality: faces whose quality falls below this are lost (when quality is known).
        redetect_every: also run the detector every this many frames (0: only when no face is tracked).
    """

    def __init__(self, smoothing: Optional[OneEuroConfig] = SHAPE_SMOOTHING, min_quality: float = 0.0,
                 redetect_every: int = 0):
        self.smoothing, self.min_quality, self.redetect_every = smoothing, min_quality, redetect_every
        self.tracks: list[Track] = []
        self.frames = 0
        self.last_timestamp_ms: Optional[float] = None

    def reset(self) -> None:
        """Forgets every face (a new video)."""
        self.tracks, self.frames, self.last_timestamp_ms = [], 0, None

    def needs_detection(self) -> bool:
        """Whether this frame runs the detector."""
        periodic = self.redetect_every and self.frames % self.redetect_every == 0
        return not self.tracks or bool(periodic)

    def boxes(self) -> np.ndarray:
        """The crop boxes of the tracked faces: the tight boxes of their last landmarks."""
        return np.stack([landmark_box(t.landmarks) for t in self.tracks]).astype(np.float32)

    def start(self, outputs: dict, scores: list) -> None:
        """New tracks from a detection pass (replacing the old ones)."""
        self.tracks = [Track(points, ShapeStabilizer(self.smoothing or SHAPE_SMOOTHING), score)
                       for points, score in zip(outputs["landmarks"], scores)]

    def keep(self, outputs: dict) -> np.ndarray:
        """Updates the tracks with a tracking pass; returns which faces were kept (the others are lost)."""
        kept = np.ones(len(self.tracks), bool)
        for i, (track, points) in enumerate(zip(self.tracks, outputs["landmarks"])):
            overlap = box_iou(landmark_box(track.landmarks), landmark_box(points)[None])[0]
            low_quality = "quality" in outputs and outputs["quality"][i] < self.min_quality
            if overlap < MIN_BOX_OVERLAP or low_quality:
                kept[i] = False
            else:
                track.landmarks = points
        self.tracks = [t for t, k in zip(self.tracks, kept) if k]
        return kept

    def smoothed(self, timestamp_ms: float) -> list[np.ndarray]:
        """Each track's landmarks through its filter at this frame's time."""
        self.frames += 1
        self.last_timestamp_ms = timestamp_ms
        if self.smoothing is None:
            return [t.landmarks for t in self.tracks]
        return [t.smoother(t.landmarks, timestamp_ms / 1000.0).astype(np.float32) for t in self.tracks]
