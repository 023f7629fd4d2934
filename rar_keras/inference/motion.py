"""A face's motion from one video frame to the next, measured by optical flow.

The landmark model sees each frame on its own, so its output carries a little noise that a filter
can only remove by averaging over frames, and averaging trails a moving head. The pixels say how
the head moved far more precisely than two noisy landmark sets do: corners inside the face
(`cv2.goodFeaturesToTrack`) are followed into the next frame by pyramidal Lucas-Kanade, kept when
tracking them back lands where they started, and a similarity (scale, rotation, shift) is fitted
to them with RANSAC. Video mode moves its crop and its smoothing filter's memory by that motion
(`inference.stabilizer`), so smoothing no longer trails the head.

The flow runs on a grey patch around the face, scaled to `PATCH_SIZE` pixels, so its cost does
not grow with the frame and its parameters mean the same for small and large faces.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import cv2
import numpy as np

from datasets.crops import chain_affine, crop_with_matrix
from datasets.geometry import apply_affine, crop_matrix, invert_affine

PATCH_SIZE = 256          # side of the grey patch the flow runs on, pixels
PATCH_MARGIN = 0.5        # context around the face box (fraction of its longer side): room for motion
MIN_FACE_SIZE = 8         # pixels: smaller faces get no motion measured
MAX_CORNERS = 80
MIN_TRACKED = 8           # fewer corners followed both ways: no motion measured
ROUND_TRIP_ERROR = 0.5    # patch pixels a corner may miss its start by, tracked forward then back
RANSAC_THRESHOLD = 1.0    # patch pixels
FLOW_WINDOW = (21, 21)
PYRAMID_LEVELS = 3


@dataclasses.dataclass
class FacePatch:
    """A grey patch of one frame around a face.

    Args:
        gray: (PATCH_SIZE, PATCH_SIZE) uint8.
        matrix: 2x3 image pixels -> patch pixels; the next frame is cut with the same matrix.
        mask: (PATCH_SIZE, PATCH_SIZE) uint8, 255 inside the face box: corners are taken there
            only, so the background's motion does not count.
    """

    gray: np.ndarray
    matrix: np.ndarray
    mask: np.ndarray


def face_patch(frame: np.ndarray, box) -> Optional[FacePatch]:
    """The grey patch of an RGB `frame` around a face `box` (x0, y0, x1, y1); None for a box
    under `MIN_FACE_SIZE` pixels."""
    x0, y0, x1, y1 = np.asarray(box, np.float64).reshape(4)
    if max(x1 - x0, y1 - y0) < MIN_FACE_SIZE:
        return None
    matrix = crop_matrix(box, PATCH_SIZE, PATCH_MARGIN)
    corners = apply_affine(np.asarray(box, np.float64).reshape(2, 2), matrix)
    (x0, y0), (x1, y1) = np.clip(np.round(corners), 0, PATCH_SIZE).astype(int)
    mask = np.zeros((PATCH_SIZE, PATCH_SIZE), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return FacePatch(_gray(crop_with_matrix(frame, matrix, PATCH_SIZE)), matrix, mask)


def estimate_motion(previous: FacePatch, frame: np.ndarray) -> Optional[np.ndarray]:
    """The 2x3 similarity (image pixels of the previous frame -> of `frame`) that moved the face
    in `previous`, or None when too few corners could be followed (a cut, blur, a face leaving)."""
    gray = _gray(crop_with_matrix(frame, previous.matrix, PATCH_SIZE))
    corners = cv2.goodFeaturesToTrack(previous.gray, maxCorners=MAX_CORNERS, qualityLevel=0.01,
                                      minDistance=PATCH_SIZE / 40, mask=previous.mask)
    if corners is None or len(corners) < MIN_TRACKED:
        return None
    moved, found, _ = cv2.calcOpticalFlowPyrLK(previous.gray, gray, corners, None, winSize=FLOW_WINDOW,
                                               maxLevel=PYRAMID_LEVELS)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(gray, previous.gray, moved, None, winSize=FLOW_WINDOW,
                                                   maxLevel=PYRAMID_LEVELS)
    good = (found[:, 0] == 1) & (found_back[:, 0] == 1) & \
        (np.linalg.norm(back - corners, axis=-1)[:, 0] < ROUND_TRIP_ERROR)
    if good.sum() < MIN_TRACKED:
        return None
    in_patch, inliers = cv2.estimateAffinePartial2D(corners[good], moved[good], method=cv2.RANSAC,
                                                    ransacReprojThreshold=RANSAC_THRESHOLD)
    if in_patch is None or inliers is None or int(inliers.sum()) < MIN_TRACKED:
        return None
    # image -> patch -> moved patch -> image
    return chain_affine(invert_affine(previous.matrix), chain_affine(in_patch, previous.matrix))


def _gray(patch: np.ndarray) -> np.ndarray:
    if patch.ndim == 3 and patch.shape[2] == 3:
        return cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
    return patch.reshape(patch.shape[:2])
