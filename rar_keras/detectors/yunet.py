"""YuNet (OpenCV `FaceDetectorYN`): the bundled OpenCV Zoo model (Apache-2.0, `models/`), or another .onnx."""

from __future__ import annotations

import os

import cv2
import numpy as np

from datasets.errors import DataError
from rar_keras.detectors.base import BOX_DIMS, DEFAULT_SCORE_THRESHOLD, BoxAdjustment, no_faces

# OpenCV Zoo's face_detection_yunet (Apache-2.0, licence beside it), 0.3 MB.
BUNDLED_YUNET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "yunet_n_320_320.onnx")
YUNET_NMS_THRESHOLD = 0.3
DEFAULT_MAX_SIDE = 640
YUNET_TOP_K = 50

# YuNet (OpenCV Zoo yunet_n_320_320.onnx) raw box -> tight 68-landmark box. Measured with
# `python tools/fit_box_adjustment.py $RAR_KERAS_DATA/300w/helen/trainset --detector yunet:PATH`:
# mean scale/shift between the best detection (IoU > 0.3 with the landmark box) and the tight box
# of the 68 ground-truth points over the 870 faces of 300-W HELEN trainset (never testset);
# matched 870 of 870, mean IoU raw 0.710 -> adjusted 0.878.
YUNET_ADJUSTMENT = BoxAdjustment(scale_x=1.034, scale_y=0.758, shift_x=0.002, shift_y=0.115)


class YuNetDetector:
    """YuNet (OpenCV `FaceDetectorYN`) from a user-supplied .onnx file.

    Args:
        model_path: a YuNet .onnx file, e.g. OpenCV Zoo's face_detection_yunet
            `yunet_n_320_320.onnx`.
        score_threshold: minimum detection score.
        adjustment: raw box -> landmark box; `None` keeps YuNet's own boxes.
        max_side: larger images are shrunk to this longest side for detection (YuNet is trained
            on small inputs: on the bundled photo it scores the main face 0.53 at 1024 px and 0.82
            at 640 px, and runs 2.2x faster); the boxes are mapped back.

    Example:
        >>> boxes, scores = YuNetDetector("yunet_n_320_320.onnx").detect(image)
    """

    INPUT_SIZE = (320, 320)   # replaced per image by setInputSize

    def __init__(self, model_path: str, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 adjustment: BoxAdjustment | None = YUNET_ADJUSTMENT, max_side: int = DEFAULT_MAX_SIDE):
        model_path = os.fspath(model_path)
        self.max_side = int(max_side)
        if not os.path.isfile(model_path):
            raise DataError(f"YuNet model {model_path}: no such file")
        self.model_path = model_path
        self.score_threshold = float(score_threshold)
        self.adjustment = adjustment
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)   # DNN backend notes are not for users
        try:
            self._net = cv2.FaceDetectorYN.create(model_path, "", self.INPUT_SIZE, self.score_threshold,
                                                  YUNET_NMS_THRESHOLD, YUNET_TOP_K)
        except cv2.error as err:
            raise DataError(f"YuNet model {model_path}: OpenCV cannot load it as YuNet ({err})") from None

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (K, 4) x0, y0, x1, y1 and scores (K,) in an RGB uint8 image, best first."""
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return no_faces()
        order = np.argsort(-faces[:, -1])
        xywh, scores = faces[order, :BOX_DIMS].astype(np.float64) / scale, faces[order, -1].astype(np.float32)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(np.float32)
        return (self.adjustment.apply(boxes) if self.adjustment else boxes), scores
