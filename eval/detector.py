"""Detector face boxes for the `--box detector` protocol (OpenCV FaceDetectorYN with YuNet)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from datasets.errors import DataError

SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.3
TOP_K = 50
MIN_IOU = 0.1      # a detection overlapping the ground-truth box less than this is not that face


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of (K, 4) boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class YuNetDetector:
    """Finds the detector box of a known face: the YuNet face that best overlaps its reference box.

    Args:
        model_path: a YuNet .onnx file (e.g. face_detection_yunet / yunet_n_320_320.onnx).
        score_threshold: minimum detection score.
        min_iou: minimum overlap with the reference box to count as that face.
    """

    def __init__(self, model_path: str, score_threshold: float = SCORE_THRESHOLD, min_iou: float = MIN_IOU):
        if not os.path.isfile(model_path):
            raise DataError(f"--detector-model {model_path}: no such file")
        self.model_path = model_path
        self.min_iou = float(min_iou)
        try:
            self._net = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold,
                                                  NMS_THRESHOLD, TOP_K)
        except cv2.error as err:
            raise DataError(f"--detector-model {model_path}: OpenCV cannot load it as YuNet ({err})") from None

    def detect(self, image: np.ndarray) -> np.ndarray:
        """All face boxes (K, 4) x0, y0, x1, y1 in an RGB uint8 image."""
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        if faces is None:
            return np.zeros((0, 4), np.float32)
        xywh = faces[:, :4].astype(np.float32)
        return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)

    def match(self, image: np.ndarray, reference_box: np.ndarray) -> np.ndarray | None:
        """The detected box best overlapping `reference_box`, or None when no face overlaps enough."""
        boxes = self.detect(image)
        if len(boxes) == 0:
            return None
        ious = box_iou(np.asarray(reference_box, dtype=np.float64), boxes)
        best = int(np.argmax(ious))
        return boxes[best] if ious[best] >= self.min_iou else None
