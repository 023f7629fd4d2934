"""Video mode: faces followed from frame to frame, the previous landmarks giving the next crop.

A face found by the detector becomes a track. On each next frame, no detector runs:

1. the face's motion since the last frame is measured by optical flow (`inference.motion`);
2. the last (unsmoothed) landmarks, moved by it, give the crop, turned so that the face keeps the
   angle it had when the track started (`inference.alignment`): the model sees nearly the same
   picture every frame;
3. one model pass gives the new landmarks, which go through the track's stabilizer with the same
   motion (`inference.stabilizer`).

A track is dropped when the face is lost: its quality (when the model has a calibrated one) falls
under `min_quality`, its new landmark box barely overlaps the expected one, or most of that box
lies outside the frame (the face left it). With no track left, the detector runs again;
`redetect_every` also re-runs it periodically to pick up new faces, and a detection that overlaps
a tracked face is left to its track (which keeps its smoothing).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from datasets.geometry import apply_affine
from datasets.record import landmark_box
from rar_keras.detectors.base import box_iou
from rar_keras.inference.alignment import aligned_crop_matrix
from rar_keras.inference.motion import FacePatch, estimate_motion, face_patch
from rar_keras.inference.one_euro import OneEuroConfig
from rar_keras.inference.stabilizer import SMOOTHING, LandmarkStabilizer

MIN_BOX_OVERLAP = 0.3      # a new landmark box overlapping the expected one less than this: the face is lost
MIN_INSIDE = 0.5           # less of the landmark box than this inside the frame: the face has left it


@dataclasses.dataclass
class Track:
    """One followed face.

    Args:
        landmarks: the last unsmoothed landmarks (L, 2), image pixels: the next crop comes from them.
        reference: the face's first landmarks: turned crops keep their angle.
        stabilizer: its smoothing filter.
        score: the detector's score when the track started.
        patch: the grey patch of the last frame around the face, for the next motion.
        motion: the face's motion into the current frame (2x3), None when it was not measured.
        expected: where the last landmarks went by that motion (L, 2).
    """

    landmarks: np.ndarray
    reference: np.ndarray
    stabilizer: LandmarkStabilizer
    score: Optional[float]
    patch: Optional[FacePatch] = None
    motion: Optional[np.ndarray] = None
    expected: Optional[np.ndarray] = None


class FaceTracker:
    """The state of video mode (see the module notes); `FaceLandmarker.detect_for_video` drives it.

    Args:
        input_size: the model's crop side in pixels.
        margin: the model's crop margin.
        smoothing: the One Euro parameters of the stabilizer, or None for no smoothing.
        optical_flow: measure each face's motion by optical flow (else the crop follows the last
            landmarks and the stabilizer takes the motion from the landmarks).
        min_quality: faces whose quality falls below this are lost (when quality is known).
        redetect_every: also run the detector every this many frames (0: only when no face is tracked).
    """

    def __init__(self, input_size: int, margin: float,
                 smoothing: Optional[OneEuroConfig] = SMOOTHING, optical_flow: bool = True,
                 min_quality: float = 0.0, redetect_every: int = 0):
        self.input_size, self.margin = int(input_size), float(margin)
        self.smoothing, self.optical_flow = smoothing, optical_flow
        self.min_quality, self.redetect_every = min_quality, redetect_every
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
        """The tight boxes (K, 4) of the tracked faces' last landmarks."""
        return np.stack([landmark_box(t.landmarks) for t in self.tracks]).astype(np.float32)

    def crop_matrices(self, frame: np.ndarray) -> np.ndarray:
        """The image -> crop matrices (K, 2, 3) of the tracked faces in this RGB frame (steps 1-2)."""
        matrices = []
        for track in self.tracks:
            track.motion = estimate_motion(track.patch, frame) if track.patch is not None else None
            track.expected = track.landmarks if track.motion is None else apply_affine(track.landmarks, track.motion)
            matrices.append(aligned_crop_matrix(track.expected, track.reference, self.input_size, self.margin))
        return np.stack(matrices)

    def add(self, outputs: dict, scores: list) -> np.ndarray:
        """New tracks from a detection pass, for the faces no track follows yet; returns which
        detections started one."""
        tracked = [landmark_box(t.landmarks) for t in self.tracks]
        added = np.zeros(len(scores), bool)
        for i, (points, score) in enumerate(zip(outputs["landmarks"], scores)):
            box = landmark_box(points)
            if tracked and box_iou(box, np.stack(tracked)).max() >= MIN_BOX_OVERLAP:
                continue
            self.tracks.append(Track(points, points.copy(), LandmarkStabilizer(self.smoothing or SMOOTHING), score))
            tracked.append(box)
            added[i] = True
        return added

    def keep(self, outputs: dict, frame_hw: tuple) -> np.ndarray:
        """Updates the tracks with a tracking pass on a frame of (height, width); returns which faces
        were kept (the others are lost)."""
        kept = np.ones(len(self.tracks), bool)
        for i, (track, points) in enumerate(zip(self.tracks, outputs["landmarks"])):
            box = landmark_box(points)
            overlap = box_iou(landmark_box(track.expected), box[None])[0]
            low_quality = "quality" in outputs and outputs["quality"][i] < self.min_quality
            if overlap < MIN_BOX_OVERLAP or low_quality or _inside(box, frame_hw) < MIN_INSIDE:
                kept[i] = False
            else:
                track.landmarks = points
        self.tracks = [t for t, k in zip(self.tracks, kept) if k]
        return kept

    def smoothed(self, frame: np.ndarray, timestamp_ms: float) -> list[np.ndarray]:
        """Each track's landmarks through its stabilizer at this frame's time (step 3); keeps the
        frame's patch around each face for the next motion."""
        self.frames += 1
        self.last_timestamp_ms = timestamp_ms
        outputs = []
        for track in self.tracks:
            points = track.landmarks
            if self.smoothing is not None:
                points = track.stabilizer(points, timestamp_ms / 1000.0, track.motion).astype(np.float32)
            if self.optical_flow:
                track.patch = face_patch(frame, landmark_box(points))
            outputs.append(points)
        return outputs


def _inside(box: np.ndarray, frame_hw: tuple) -> float:
    """The share of `box`'s area inside a frame of (height, width)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    area = max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6)
    width = max(0.0, min(x1, frame_hw[1]) - max(x0, 0.0))
    height = max(0.0, min(y1, frame_hw[0]) - max(y0, 0.0))
    return width * height / area
