"""Re-cropping a detected face around its own landmarks until its box settles.

A detector's box is only roughly the face, and the model was trained on crops around the tight box
of the true landmarks. Each refinement crops the face again around the tight box of the previous
pass's landmarks. On occluded faces the first boxes are often far off (the occluder moves the
detector's box, and the first pass's hidden points with it), and every further crop brings the box
closer; on clean faces the box settles after one refinement, so the loop stops a face once its box
moves by less than `tolerance` of its side.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from datasets.errors import DataError
from datasets.record import check_box, landmark_box

DEFAULT_REFINE_CROPS = 3
DEFAULT_SETTLE_TOLERANCE = 0.02     # of the box's longer side


def refined_box(points: np.ndarray, box: np.ndarray, image_hw) -> np.ndarray:
    """The tight box of a pass's landmarks, or the `box` they came from when those landmarks give no
    usable box (a degenerate shape, or one off the image).

    Args:
        points: (L, 2) landmarks in image pixels.
        box: (4,) the box they were predicted from.
        image_hw: (H, W) of the image.
    """
    refined = landmark_box(points).astype(np.float32)
    try:
        return check_box(refined, image_hw, "refined box")
    except DataError:
        return np.asarray(box, np.float32)


def box_settled(old: np.ndarray, new: np.ndarray, tolerance: float) -> np.ndarray:
    """(K,) whether no coordinate of each `new` box moved from its `old` box by `tolerance` times the
    old box's longer side or more.

    Args:
        old: (K, 4) boxes (x0, y0, x1, y1).
        new: (K, 4) the boxes that would replace them.
        tolerance: a fraction of each old box's longer side.
    """
    side = np.maximum(old[:, 2] - old[:, 0], old[:, 3] - old[:, 1])
    return np.abs(new - old).max(axis=1) < tolerance * side


def refine_boxes(predict: Callable[[np.ndarray], dict], outputs: dict, boxes: np.ndarray, image_hw,
                 crops: int = DEFAULT_REFINE_CROPS, tolerance: float = DEFAULT_SETTLE_TOLERANCE
                 ) -> tuple[dict, np.ndarray]:
    """Crops every face up to `crops` more times, each around its previous pass's landmarks.

    The first refinement always runs; after it, a face stops once its next box would move by less
    than `tolerance` of its side (its landmarks would barely change). A face whose landmarks give no
    usable box keeps the box it has, and stops.

    Args:
        predict: boxes (N, 4) -> outputs {"landmarks": (N, L, 2), ...}, every value (N, ...), the
            same keys on every call.
        outputs: the pass on `boxes`, the same keys.
        boxes: (K, 4) the boxes `outputs` came from.
        image_hw: (H, W) of the image, for the boxes' checks.
        crops: how many refinements at most (0 returns the inputs).
        tolerance: the settling threshold, a fraction of the box's longer side.

    Returns: (outputs of each face's last pass, the boxes they came from).
    """
    outputs = {key: np.array(value) for key, value in outputs.items()}
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    active = np.arange(len(boxes))
    for crop in range(crops):
        moved = np.array([refined_box(outputs["landmarks"][i], boxes[i], image_hw) for i in active],
                         np.float32).reshape(-1, 4)
        moving = np.any(moved != boxes[active], axis=1)
        if crop > 0:
            moving &= ~box_settled(boxes[active], moved, tolerance)
        active, moved = active[moving], moved[moving]
        if not len(active):
            break
        again = predict(moved)
        if set(again) != set(outputs):
            raise ValueError(f"predict returned the outputs {sorted(again)}, the first pass {sorted(outputs)}")
        for key, value in again.items():
            outputs[key][active] = value
        boxes[active] = moved
    return outputs, boxes
