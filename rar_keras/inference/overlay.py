"""Landmark overlays (OpenCV): the prediction in red, the ground truth in green, contours as polylines."""

from __future__ import annotations

import os

import cv2
import numpy as np

from datasets.schemes import LandmarkScheme

PRED_COLOR_RGB = (255, 64, 64)     # red: prediction
GT_COLOR_RGB = (64, 220, 64)       # green: ground truth
OVERLAY_MIN_SIDE = 256             # small crops are upscaled so points stay visible
OVERLAY_CONTEXT = 0.5              # overlays show the box plus this fraction of its side around it


def _draw_shape(canvas: np.ndarray, points: np.ndarray, scheme: LandmarkScheme, color, scale: float) -> None:
    pts = np.round(np.asarray(points, dtype=np.float64) * scale).astype(np.int32)
    for run in scheme.contours:
        cv2.polylines(canvas, [pts[list(run)].reshape(-1, 1, 2)], False, color, 1, cv2.LINE_AA)
    radius = max(1, int(round(scale * 1.5)))
    for x, y in pts:
        cv2.circle(canvas, (int(x), int(y)), radius, color, -1, cv2.LINE_AA)


def _crop_to_box(image: np.ndarray, box, points: list) -> tuple[np.ndarray, list]:
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(-1)
    pad = OVERLAY_CONTEXT * max(x1 - x0, y1 - y0)
    h, w = image.shape[:2]
    left, top = int(max(0, np.floor(x0 - pad))), int(max(0, np.floor(y0 - pad)))
    right, bottom = int(min(w, np.ceil(x1 + pad) + 1)), int(min(h, np.ceil(y1 + pad) + 1))
    if right <= left or bottom <= top:
        return image, points
    shift = np.array([left, top], dtype=np.float64)
    return image[top:bottom, left:right], [None if p is None else np.asarray(p) - shift for p in points]


def draw_overlay(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme,
                 caption: str = "", box=None) -> np.ndarray:
    """RGB picture with the ground truth (green) and the prediction (red) drawn on `image`.

    Points are dots; `scheme.contours` are polylines. With `box`, the picture is
    cut to the box plus some context. Small pictures are upscaled first.
    """
    if box is not None:
        image, (pred, gt) = _crop_to_box(image, box, [pred, gt])
    scale = max(1.0, OVERLAY_MIN_SIDE / max(1, min(image.shape[:2])))
    canvas = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    if scale > 1.0:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    canvas = canvas.copy()
    if gt is not None:
        _draw_shape(canvas, gt, scheme, GT_COLOR_RGB, scale)
    _draw_shape(canvas, pred, scheme, PRED_COLOR_RGB, scale)
    if caption:
        cv2.putText(canvas, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def save_overlay(path: str, image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme,
                 caption: str = "", box=None) -> None:
    """Writes `draw_overlay(...)` as a PNG (converted to OpenCV's BGR order)."""
    canvas = draw_overlay(image, pred, gt, scheme, caption, box)
    if not cv2.imwrite(os.fspath(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
