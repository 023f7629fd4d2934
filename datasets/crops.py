"""Cutting the square model crop around a face box out of an image (OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from datasets.errors import DataError
from datasets.geometry import DEFAULT_MARGIN, crop_matrix, invert_affine
from datasets.record import check_box

# Above this image->crop shrink factor, bilinear sampling skips pixels and aliases:
# the region is first shrunk with INTER_AREA (a box filter) down to about crop scale.
MAX_DIRECT_SHRINK = 2.0
# Extra source pixels kept around the region the crop sees, so that bilinear
# sampling at its edge still reads real neighbours.
ROI_PAD = 2


def crop_face(image: np.ndarray, box, size: int, margin: float = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Cuts the square crop of side `size` around `box` (see `geometry.crop_matrix`).

    Bilinear sampling, black outside the image. When the crop shrinks the face
    by more than 2x, the covered region is first shrunk with INTER_AREA so the
    crop does not alias; the returned matrix stays the exact image->crop map.

    Args:
        image: RGB uint8 (H, W, 3) (any channel count works).
        box: (x0, y0, x1, y1) face box in image pixels.
        size: crop side in pixels.
        margin: context around the box, as a fraction of its longer side.

    Returns:
        crop: uint8 (size, size, C).
        matrix: 2x3 float64, image pixels -> crop pixels.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"crop_face: image must be (H, W, 3) with H, W > 0, got shape {image.shape}")
    if int(size) <= 0:
        raise DataError(f"crop_face: crop size must be a positive integer, got {size}")
    box = check_box(box, image.shape[:2], "crop_face")
    matrix = crop_matrix(box, int(size), margin)
    return crop_with_matrix(image, matrix, int(size)), matrix


def crop_with_matrix(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The square crop of side `size` seen through `matrix` (2x3, image pixels -> crop pixels; any
    similarity: a turned crop follows a tilted face).

    Bilinear sampling, black outside the image. When the crop shrinks the image by more than 2x,
    the region it covers is first shrunk with INTER_AREA so the crop does not alias.
    """
    image = np.asarray(image)
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    warp, source = matrix, image
    if scale < 1.0 / MAX_DIRECT_SHRINK:
        source, source_from_image = _preshrink(image, matrix, size, scale)
        warp = chain_affine(matrix, invert_affine(source_from_image))
    crop = cv2.warpAffine(source, warp, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if crop.ndim == 2 and image.ndim == 3:
        crop = crop[..., None]
    return crop.astype(np.uint8, copy=False)


def _preshrink(image: np.ndarray, matrix: np.ndarray, size: int, scale: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """The image region the crop sees, shrunk with INTER_AREA to about crop scale.

    Returns the shrunk region and the exact 2x3 map image -> shrunk region.
    """
    h, w = image.shape[:2]
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    inverse = invert_affine(matrix)
    seen = corners @ inverse[:, :2].T + inverse[:, 2]
    x0 = int(np.clip(np.floor(seen[:, 0].min()) - ROI_PAD, 0, w - 1))
    y0 = int(np.clip(np.floor(seen[:, 1].min()) - ROI_PAD, 0, h - 1))
    x1 = int(np.clip(np.ceil(seen[:, 0].max()) + ROI_PAD + 1, x0 + 1, w))
    y1 = int(np.clip(np.ceil(seen[:, 1].max()) + ROI_PAD + 1, y0 + 1, h))
    region = image[y0:y1, x0:x1]
    out_w = max(1, int(round((x1 - x0) * scale)))
    out_h = max(1, int(round((y1 - y0) * scale)))
    small = cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA)
    # cv2.resize aligns pixel edges: dst = (src + 0.5) * s - 0.5 with s = dst_n / src_n.
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    small_from_image = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5],
                                 [0.0, sy, (0.5 - y0) * sy - 0.5]], np.float64)
    return small, small_from_image


def chain_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """2x3 matrix of `outer(inner(p))` for two 2x3 affine matrices."""
    bottom = np.array([[0.0, 0.0, 1.0]])
    return (np.vstack([outer, bottom]) @ np.vstack([inner, bottom]))[:2]
