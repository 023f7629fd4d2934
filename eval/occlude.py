"""`python -m eval.occlude`: an occluded copy of a test set, with per-landmark occlusion flags.

Each face gets one occluder, and a second one with probability --second (default 0.5). An
occluder covers 20-45 % of the face's landmark box (--area), is a rectangle or an ellipse, sits
with its centre inside the landmark box, and is filled with a patch of another photo of the set
(half of them: real occluders look like photos), a flat colour or noise. A landmark under an
occluder is flagged occluded. Seeded: the same --seed gives the same copy. `--fill photo|flat|noise` fills every
occluder one way, to measure a model against one kind of occluder (the default `mixed` draws the
kind per occluder as above).

    python -m eval.occlude --data $RAR_KERAS_DATA/300w/helen/testset --out occluded/helen

writes OUT/images/<name>.png and OUT/annotations.json (COCO keypoints, v = 2 visible, 1
occluded: COFW's convention), which every `eval.*` CLI reads: they then report the NME over the
visible points and, for models that predict it, the visibility AUC. Use it on a validation
split to choose settings, and on a test set to report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
from typing import Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.record import landmark_box
from rar_keras.utils.atomic import write_bytes_atomically

EXIT_USER_ERROR = 2
DEFAULT_AREA = (0.20, 0.45)         # of the landmark box, per occluder
ASPECT_RANGE = (0.5, 2.0)           # width / height, log-uniform
FILLS = ("photo", "photo", "flat", "noise")   # half photo patches
FILL_CHOICES = {"mixed": FILLS, "photo": ("photo",), "flat": ("flat",), "noise": ("noise",)}
V_VISIBLE, V_OCCLUDED = 2, 1
PATCH_SOURCE_SIDE = 384             # photos kept this small in memory as patch sources


def occluder_mask(shape: tuple[int, int], box: np.ndarray, rng: np.random.Generator,
                  area_range: tuple[float, float]) -> np.ndarray:
    """A (H, W) bool mask: one rectangle or ellipse of `area_range` times the box area, centred inside the box."""
    x0, y0, x1, y1 = box
    box_w, box_h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    area = rng.uniform(*area_range) * box_w * box_h
    aspect = math.exp(rng.uniform(math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])))
    ellipse = rng.random() < 0.5
    stretch = math.sqrt(4.0 / math.pi) if ellipse else 1.0        # equal area for both shapes
    half_w, half_h = stretch * math.sqrt(area * aspect) / 2.0, stretch * math.sqrt(area / aspect) / 2.0
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    dx, dy = (xs - cx) / half_w, (ys - cy) / half_h
    return (dx * dx + dy * dy <= 1.0) if ellipse else ((np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0))


def fill_pixels(image: np.ndarray, mask: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator,
                fills: Sequence[str] = FILLS) -> str:
    """Paints `mask` of `image` in place with a photo patch, a flat colour or noise, drawn from
    `fills` (a photo needs `others`: without them a flat colour or noise); returns which."""
    if not others:
        fills = tuple(kind for kind in fills if kind != "photo") or FILLS[2:]
    kind = fills[rng.integers(len(fills))]
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return kind
    top, left, bottom, right = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    if kind == "photo":
        source = others[rng.integers(len(others))]
        height, width = bottom - top, right - left
        sy = rng.integers(0, max(1, source.shape[0] - height + 1))
        sx = rng.integers(0, max(1, source.shape[1] - width + 1))
        patch = source[sy:sy + height, sx:sx + width]
        patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR) if patch.shape[:2] != (height, width) \
            else patch
        image[top:bottom, left:right][mask[top:bottom, left:right]] = patch[mask[top:bottom, left:right]]
    elif kind == "flat":
        image[mask] = rng.integers(0, 256, 3, dtype=np.uint8)
    else:
        image[mask] = rng.integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    return kind


def occlude_face(image: np.ndarray, landmarks: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator,
                 area_range=DEFAULT_AREA, second: float = 0.5, fills: Sequence[str] = FILLS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(occluded copy of `image`, (L,) bool visible) for one face; each occluder filled with a kind
    drawn from `fills`."""
    out = np.array(image, copy=True)
    box = landmark_box(landmarks)
    visible = np.ones(len(landmarks), bool)
    for _ in range(1 + int(rng.random() < second)):
        mask = occluder_mask(out.shape[:2], box, rng, area_range)
        fill_pixels(out, mask, others, rng, fills)
        cols = np.clip(np.round(landmarks[:, 0]).astype(int), 0, out.shape[1] - 1)
        rows = np.clip(np.round(landmarks[:, 1]).astype(int), 0, out.shape[0] - 1)
        visible &= ~mask[rows, cols]
    return out, visible


def write_occluded_copy(records, out: pathlib.Path, seed: int = 0, area_range=DEFAULT_AREA,
                        second: float = 0.5, progress=lambda items, **_: items, fill: str = "mixed") -> dict:
    """Writes the occluded copy (images + COCO JSON); returns counts. `fill` is a key of
    `FILL_CHOICES`."""
    if fill not in FILL_CHOICES:
        raise DataError(f"fill {fill!r}: expected one of {', '.join(FILL_CHOICES)}")
    if fill == "photo" and len(records) < 2:
        raise DataError("--fill photo takes its patches from the other photos of --data; it needs two faces or more")
    rng = np.random.default_rng(seed)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    # Photo patches come from anywhere in the other photos of the set (backgrounds, clothes, hair, faces).
    patches = [_downscaled(r.image) for r in records]
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "face"}]}
    occluded_points, names = 0, set()
    for index, record in enumerate(progress(records, desc="occluding", unit="face")):
        others = patches[:index] + patches[index + 1:]
        image, visible = occlude_face(record.image, record.landmarks, others, rng, area_range, second,
                                      FILL_CHOICES[fill])
        name = _unique(pathlib.Path(record.path).stem, names) + ".png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {name}")
        write_bytes_atomically(images_dir / name, png.tobytes())
        flags = np.where(visible, V_VISIBLE, V_OCCLUDED)
        keypoints = np.concatenate([record.landmarks, flags[:, None]], 1).ravel()
        x0, y0, x1, y1 = (float(v) for v in record.box)
        coco["images"].append({"id": index, "file_name": f"images/{name}", "width": int(image.shape[1]),
                               "height": int(image.shape[0])})
        coco["annotations"].append({"id": index, "image_id": index, "category_id": 1,
                                    "keypoints": [round(float(v), 3) for v in keypoints],
                                    "num_keypoints": int(len(flags)), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                    "source": record.path})
        occluded_points += int((~visible).sum())
    write_bytes_atomically(out / "annotations.json", (json.dumps(coco) + "\n").encode())
    return {"faces": len(records), "occluded_points": occluded_points,
            "points": int(sum(len(r.landmarks) for r in records))}


def _downscaled(image: np.ndarray, longest: int = PATCH_SOURCE_SIDE) -> np.ndarray:
    scale = longest / max(image.shape[:2])
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _unique(stem: str, used: set) -> str:
    name, suffix = stem, 1
    while name in used:
        name, suffix = f"{stem}_{suffix}", suffix + 1
    used.add(name)
    return name


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.occlude", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, help="the faces to occlude (any dataset the readers know)")
    parser.add_argument("--out", required=True, help="output folder (images/ and annotations.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--area", type=float, nargs=2, default=DEFAULT_AREA, metavar=("MIN", "MAX"),
                        help="occluder area as a fraction of the landmark box")
    parser.add_argument("--second", type=float, default=0.5, help="probability of a second occluder")
    parser.add_argument("--fill", choices=sorted(FILL_CHOICES), default="mixed",
                        help="what fills the occluders: mixed (half photo patches, a quarter flat colours, a quarter "
                             "noise) or one kind only")
    args = parser.parse_args(argv)
    try:
        if not os.path.exists(args.data):
            raise DataError(f"--data {args.data}: no such file or folder")
        if not 0 < args.area[0] <= args.area[1] <= 1 or not 0 <= args.second <= 1:
            raise DataError("--area needs 0 < MIN <= MAX <= 1 and --second a probability")


        records = load_records(args.data)
        if not records:
            raise DataError(f"--data {args.data}: no annotated faces found")
        counts = write_occluded_copy(records, pathlib.Path(args.out), args.seed, tuple(args.area), args.second,
                                     progress=lambda items, **kw: tqdm(items, file=sys.stderr, **kw),
                                     fill=args.fill)
    except (DataError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"wrote {counts['faces']} occluded faces to {args.out} ({counts['occluded_points']} of "
          f"{counts['points']} points occluded, {100 * counts['occluded_points'] / counts['points']:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
