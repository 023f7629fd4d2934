"""Landmark overlays (OpenCV): the prediction in red, the ground truth in green, contours as polylines.

Markers scale with the face, so small faces in a group photo stay readable; landmarks the model
thinks are occluded are drawn as hollow orange rings; a legend names what each colour is.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from datasets.schemes import LandmarkScheme

PRED_COLOR_RGB = (255, 64, 64)     # red: prediction
GT_COLOR_RGB = (64, 220, 64)       # green: ground truth
OCCLUDED_COLOR_RGB = (255, 165, 0)  # orange rings: predicted occluded
OVERLAY_MIN_SIDE = 256             # small crops are upscaled so points stay visible
OVERLAY_CONTEXT = 0.5              # overlays show the box plus this fraction of its side around it
MARKER_FRACTION = 0.012            # marker radius as a fraction of the face's size (landmark box diagonal)
OCCLUDED_BELOW = 0.5               # visibility under this draws a landmark as occluded


def marker_radius(points: np.ndarray) -> int:
    """A marker radius in pixels for a face whose landmarks are `points` (L, 2)."""
    points = np.asarray(points, np.float64)
    diagonal = float(np.linalg.norm(points.max(0) - points.min(0)))
    return max(1, int(round(MARKER_FRACTION * diagonal)))


def _draw_shape(canvas: np.ndarray, points: np.ndarray, scheme: LandmarkScheme, color, visibility=None) -> None:
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32)
    radius = marker_radius(points)
    thickness = max(1, radius // 2)
    for run in scheme.contours:
        cv2.polylines(canvas, [pts[list(run)].reshape(-1, 1, 2)], False, color, thickness, cv2.LINE_AA)
    hidden = np.zeros(len(pts), bool) if visibility is None else np.asarray(visibility) < OCCLUDED_BELOW
    for (x, y), occluded in zip(pts, hidden):
        if occluded:
            cv2.circle(canvas, (int(x), int(y)), radius + 1, OCCLUDED_COLOR_RGB, thickness, cv2.LINE_AA)
        else:
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


def _put_text(canvas: np.ndarray, text: str, origin, color) -> None:
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)


def draw_legend(canvas: np.ndarray, entries: list[tuple[str, tuple]]) -> None:
    """Names each colour in the bottom-left corner: entries of (label, RGB colour)."""
    for row, (label, color) in enumerate(reversed(entries)):
        _put_text(canvas, label, (6, canvas.shape[0] - 8 - 18 * row), color)


def draw_overlay(image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme,
                 caption: str = "", box=None, visibility=None, legend: bool = True) -> np.ndarray:
    """RGB picture with the ground truth (green) and the prediction (red) drawn on `image`.

    Args:
        image: RGB uint8.
        pred: (L, 2) predicted landmarks in image pixels.
        gt: (L, 2) ground truth, or None.
        scheme: the landmark scheme (its contours are drawn as polylines).
        caption: text in the top-left corner.
        box: when given, the picture is cut to the box plus some context.
        visibility: (L,) predicted visibility; points under 0.5 are drawn as occluded.
        legend: name the colours in the corner.
    """
    if box is not None:
        image, (pred, gt) = _crop_to_box(image, box, [pred, gt])
    scale = max(1.0, OVERLAY_MIN_SIDE / max(1, min(image.shape[:2])))
    canvas = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    if scale > 1.0:
        canvas = cv2.resize(canvas, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    canvas = canvas.copy()
    entries = [("prediction", PRED_COLOR_RGB)]
    if gt is not None:
        _draw_shape(canvas, np.asarray(gt) * scale, scheme, GT_COLOR_RGB)
        entries.insert(0, ("truth", GT_COLOR_RGB))
    _draw_shape(canvas, np.asarray(pred) * scale, scheme, PRED_COLOR_RGB, visibility)
    if visibility is not None and (np.asarray(visibility) < OCCLUDED_BELOW).any():
        entries.append(("occluded", OCCLUDED_COLOR_RGB))
    if caption:
        _put_text(canvas, caption, (6, 20), (255, 255, 255))
    if legend:
        draw_legend(canvas, entries)
    return canvas


def save_overlay(path: str, image: np.ndarray, pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme,
                 caption: str = "", box=None, visibility=None) -> None:
    """Writes `draw_overlay(...)` as a PNG (converted to OpenCV's BGR order)."""
    canvas = draw_overlay(image, pred, gt, scheme, caption, box, visibility)
    if not cv2.imwrite(os.fspath(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
