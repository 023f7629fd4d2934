"""Detector face boxes for the `--box detector` protocol (YuNet via `rar_keras.detectors.yunet`).

The protocol uses YuNet's own boxes (no landmark-box adjustment), matched to each
annotated face by overlap with its reference box.
"""

from __future__ import annotations

import numpy as np

from rar_keras.detectors.yunet import YuNetDetector as _YuNet
from rar_keras.detectors.base import box_iou  # noqa: F401  (re-exported for callers of eval.detector)

SCORE_THRESHOLD = 0.5
MIN_IOU = 0.1      # a detection overlapping the ground-truth box less than this is not that face


class YuNetDetector(_YuNet):
    """Finds the detector box of a known face: the YuNet face that best overlaps its reference box.

    Args:
        model_path: a YuNet .onnx file (e.g. face_detection_yunet / yunet_n_320_320.onnx).
        score_threshold: minimum detection score.
        min_iou: minimum overlap with the reference box to count as that face.
    """

    def __init__(self, model_path: str, score_threshold: float = SCORE_THRESHOLD, min_iou: float = MIN_IOU):
        super().__init__(model_path, score_threshold, adjustment=None)
        self.min_iou = float(min_iou)

    def match(self, image: np.ndarray, reference_box: np.ndarray) -> np.ndarray | None:
        """The detected box best overlapping `reference_box`, or None when no face overlaps enough."""
        boxes, _ = self.detect(image)
        if len(boxes) == 0:
            return None
        ious = box_iou(np.asarray(reference_box, dtype=np.float64), boxes)
        best = int(np.argmax(ious))
        return boxes[best] if ious[best] >= self.min_iou else None
