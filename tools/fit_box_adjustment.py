"""Measures a detector's `BoxAdjustment`: raw detector box -> tight 68-landmark box.

    python -m tools.fit_box_adjustment $RAR_KERAS_DATA/300w/helen/trainset --detector blazeface:full

For each annotated face (a 300-W folder of image + .pts pairs) the detector runs
on the whole image without adjustment; the best-scoring detection overlapping the
tight ground-truth landmark box with IoU > `MIN_MATCH_IOU` is that face's box. The
printed constants are the mean scale and shift over the matched faces, with the
IoU with the landmark box before and after adjusting. Fit on training faces only.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from datasets.errors import DataError
from datasets.record import landmark_box
from datasets.w300 import iter_folder
from rar_keras.detectors.base import BoxAdjustment, box_iou
from rar_keras.detectors.factory import make_detector

MIN_MATCH_IOU = 0.3


def matched_boxes(detector, records) -> tuple[np.ndarray, np.ndarray]:
    """(detected, tight) (M, 4) box pairs for the faces the detector finds."""
    detected, tight = [], []
    for record in records:
        target = landmark_box(record.landmarks)
        boxes, _ = detector.detect(record.image)
        if len(boxes) == 0:
            continue
        ious = box_iou(target, boxes)
        candidates = np.flatnonzero(ious > MIN_MATCH_IOU)
        if len(candidates):
            detected.append(boxes[candidates[0]])   # boxes come best score first
            tight.append(target)
    return np.asarray(detected, np.float64).reshape(-1, 4), np.asarray(tight, np.float64).reshape(-1, 4)


def mean_iou(boxes: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean([box_iou(t, b)[0] for b, t in zip(boxes, targets)])) if len(boxes) else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="300-W style folder of images + .pts (training faces)")
    parser.add_argument("--detector", default="blazeface:full", help="blazeface[:full|short] or yunet:PATH")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many faces (0 = all)")
    args = parser.parse_args(argv)
    try:
        detector = make_detector(args.detector)
        detector.adjustment = None
        records = iter_folder(args.folder)
        if args.limit:
            records = (r for i, r in zip(range(args.limit), records))
        records = list(records)
        detected, tight = matched_boxes(detector, records)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if len(detected) == 0:
        print("error: the detector matched no face", file=sys.stderr)
        return 1
    fitted = BoxAdjustment.fit(detected, tight)
    print(f"{args.detector}: matched {len(detected)} of {len(records)} faces in {args.folder}")
    print(f"mean IoU with the landmark box: raw {mean_iou(detected, tight):.3f}, "
          f"adjusted {mean_iou(fitted.apply(detected), tight):.3f}")
    print(f"BoxAdjustment(scale_x={fitted.scale_x:.3f}, scale_y={fitted.scale_y:.3f}, "
          f"shift_x={fitted.shift_x:.3f}, shift_y={fitted.shift_y:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
