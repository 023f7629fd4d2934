"""Pluggable face detectors: the `FaceDetector` protocol, the box adjustment, YuNet, and a factory.

A detector returns face boxes in *landmark-box convention*: the tight box of
the 68 landmarks the model was trained on (it crops that box plus its own
margin). Raw detector boxes are wider/taller and shifted (a BlazeFace box ends
at the eyebrows, not at the chin), so each built-in detector maps its raw boxes
through a measured `BoxAdjustment`; see `rar_keras.fit_box_adjustment`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol, runtime_checkable

import numpy as np

from datasets.errors import DataError

BOX_DIMS = 4
DEFAULT_SCORE_THRESHOLD = 0.5
YUNET_NMS_THRESHOLD = 0.3
YUNET_TOP_K = 50
YUNET_PREFIX = "yunet:"
BLAZEFACE = "blazeface"
DETECTOR_SPECS = ("blazeface", "blazeface:auto", "blazeface:full", "blazeface:short", "yunet:PATH")


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces in an RGB uint8 image.

    `detect(image)` returns (N, 4) float32 boxes x0, y0, x1, y1 in image pixels
    (pixel centres on integers; landmark-box convention, see the module notes)
    and (N,) float32 scores in [0, 1], best first. No face: two empty arrays.
    """

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


@dataclasses.dataclass(frozen=True)
class BoxAdjustment:
    """Maps a raw detector box to the tight landmark box: shift the centre, scale the sides.

    With a raw box of centre (cx, cy) and size (w, h), the adjusted box has centre
    (cx + shift_x * w, cy + shift_y * h) and size (scale_x * w, scale_y * h).

    Args:
        scale_x, scale_y: landmark-box side / detector-box side.
        shift_x, shift_y: (landmark-box centre - detector-box centre) / detector-box side.

    Example:
        >>> tight = BoxAdjustment(0.9, 1.1, 0.0, 0.08).apply(raw_boxes)
    """

    scale_x: float = 1.0
    scale_y: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) raw boxes -> (N, 4) float32 adjusted boxes."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, BOX_DIMS)
        size = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0 + size * [self.shift_x, self.shift_y]
        half = size * [self.scale_x, self.scale_y] / 2.0
        return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)

    @classmethod
    def fit(cls, detected: np.ndarray, target: np.ndarray) -> "BoxAdjustment":
        """The mean scale and shift taking each `detected` box to its `target` box ((N, 4) each)."""
        detected = np.asarray(detected, dtype=np.float64).reshape(-1, BOX_DIMS)
        target = np.asarray(target, dtype=np.float64).reshape(-1, BOX_DIMS)
        if len(detected) == 0 or detected.shape != target.shape:
            raise ValueError(f"need matching non-empty box arrays, got {detected.shape} and {target.shape}")
        size = detected[:, 2:] - detected[:, :2]
        scale = (target[:, 2:] - target[:, :2]) / size
        shift = ((target[:, :2] + target[:, 2:]) - (detected[:, :2] + detected[:, 2:])) / 2.0 / size
        (sx, sy), (dx, dy) = scale.mean(axis=0), shift.mean(axis=0)
        return cls(float(sx), float(sy), float(dx), float(dy))


# YuNet (OpenCV Zoo yunet_n_320_320.onnx) raw box -> tight 68-landmark box. Measured with
# `python -m rar_keras.fit_box_adjustment ../shared/data/300w/helen/trainset --detector yunet:PATH`:
# mean scale/shift between the best detection (IoU > 0.3 with the landmark box) and the tight box
# of the 68 ground-truth points over the 870 faces of 300-W HELEN trainset (never testset);
# matched 870 of 870, mean IoU raw 0.710 -> adjusted 0.878.
YUNET_ADJUSTMENT = BoxAdjustment(scale_x=1.034, scale_y=0.758, shift_x=0.002, shift_y=0.115)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each of (K, 4) boxes."""
    box = np.asarray(box, dtype=np.float64).reshape(BOX_DIMS)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, BOX_DIMS)
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def no_faces() -> tuple[np.ndarray, np.ndarray]:
    """The empty detection: (0, 4) boxes and (0,) scores."""
    return np.zeros((0, BOX_DIMS), np.float32), np.zeros((0,), np.float32)


class YuNetDetector:
    """YuNet (OpenCV `FaceDetectorYN`) from a user-supplied .onnx file.

    Args:
        model_path: a YuNet .onnx file, e.g. OpenCV Zoo's face_detection_yunet
            `yunet_n_320_320.onnx`.
        score_threshold: minimum detection score.
        adjustment: raw box -> landmark box; `None` keeps YuNet's own boxes.

    Example:
        >>> boxes, scores = YuNetDetector("yunet_n_320_320.onnx").detect(image)
    """

    INPUT_SIZE = (320, 320)   # replaced per image by setInputSize

    def __init__(self, model_path: str, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 adjustment: BoxAdjustment | None = YUNET_ADJUSTMENT):
        import cv2

        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise DataError(f"YuNet model {model_path}: no such file")
        self.model_path = model_path
        self.score_threshold = float(score_threshold)
        self.adjustment = adjustment
        try:
            self._net = cv2.FaceDetectorYN.create(model_path, "", self.INPUT_SIZE, self.score_threshold,
                                                  YUNET_NMS_THRESHOLD, YUNET_TOP_K)
        except cv2.error as err:
            raise DataError(f"YuNet model {model_path}: OpenCV cannot load it as YuNet ({err})") from None

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (K, 4) x0, y0, x1, y1 and scores (K,) in an RGB uint8 image, best first."""
        import cv2

        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        if faces is None or len(faces) == 0:
            return no_faces()
        order = np.argsort(-faces[:, -1])
        xywh, scores = faces[order, :BOX_DIMS].astype(np.float64), faces[order, -1].astype(np.float32)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(np.float32)
        return (self.adjustment.apply(boxes) if self.adjustment else boxes), scores


def make_detector(spec, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> FaceDetector:
    """A detector from a spec: "blazeface" (= "blazeface:auto"), "blazeface:full|short", "yunet:PATH",
    or a FaceDetector object (returned as is).

    Raises:
        DataError: an unknown spec or a missing/unloadable model file.
    """
    if not isinstance(spec, str):
        if isinstance(spec, FaceDetector):
            return spec
        raise DataError(f"detector {spec!r}: expected one of {DETECTOR_SPECS} or an object with "
                        "detect(image) -> (boxes, scores)")
    if spec == BLAZEFACE or spec.startswith(BLAZEFACE + ":"):
        from rar_keras.blazeface import AUTO, BlazeFaceDetector

        variant = spec.partition(":")[2] or AUTO
        return BlazeFaceDetector(variant, score_threshold=score_threshold)
    if spec.startswith(YUNET_PREFIX) and len(spec) > len(YUNET_PREFIX):
        return YuNetDetector(spec[len(YUNET_PREFIX):], score_threshold=score_threshold)
    raise DataError(f"unknown detector {spec!r}: use one of {', '.join(DETECTOR_SPECS)}")
