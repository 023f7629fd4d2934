"""`python -m tools.fit_quality`: fits a preset's per-face quality score on validation faces.

    python -m tools.fit_quality --model rar_keras/presets/w300_mobile --data VALIDATION... \\
        --out rar_keras/presets/w300_mobile/quality.json

Positives: the validation faces the model gets right (NME ip under --success, ground-truth box);
negatives: the ones it gets wrong, and crops of no face (the same box moved off the face, onto the
background: what a false detection looks like). A logistic regression (scikit-learn) on the
features of `rar_keras.inference.quality` gives the score; its cross-validated ROC AUC is printed
and stored with it. Fit on validation faces, never on a test set.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.record import check_box, landmark_box
from eval.metrics import nme, normalizer
from rar_keras.inference.crop_landmarker import CropLandmarker
from rar_keras.inference.crop_models import load_crop_model
from rar_keras.inference.quality import QualityModel, quality_features
from rar_keras.utils.atomic import write_bytes_atomically

DEFAULT_SUCCESS = 0.08
OFF_FACE_SHIFTS = ((1.5, 0.0), (-1.5, 0.0), (0.0, 1.5), (0.0, -1.5))   # in face sizes


def off_face_boxes(image_hw, box) -> list[np.ndarray]:
    """The face box moved by 1.5 face sizes left, right, up and down, where it stays in the image."""
    size = box[2:] - box[:2]
    moved = []
    for dx, dy in OFF_FACE_SHIFTS:
        candidate = box + np.array([dx * size[0], dy * size[1]] * 2, np.float32)
        try:
            moved.append(check_box(candidate, image_hw, "off-face box"))
        except DataError:
            continue
    return moved


def collect(landmarker: CropLandmarker, records, success: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """(features (N, 2), labels (N,) 1 = right, counts) over the faces and their off-face crops."""
    images = [r.image for r in records]
    boxes = np.stack([landmark_box(r.landmarks) for r in records])
    outputs = landmarker.predict_outputs(images, boxes)
    truth = np.stack([r.landmarks for r in records])
    errors = nme(outputs["landmarks"], truth, normalizer(truth, landmarker.scheme, "ip"))
    features = [quality_features(outputs["confidence"], outputs.get("visibility"))]
    labels = [(errors < success).astype(int)]
    off_images, off_boxes = [], []
    for record, box in zip(records, boxes):
        for moved in off_face_boxes(record.image.shape[:2], box):
            off_images.append(record.image)
            off_boxes.append(moved)
    if off_images:
        off = landmarker.predict_outputs(off_images, np.stack(off_boxes))
        features.append(quality_features(off["confidence"], off.get("visibility")))
        labels.append(np.zeros(len(off_images), int))
    counts = {"faces": len(records), "faces_right": int(labels[0].sum()), "off_face_crops": len(off_images)}
    return np.concatenate(features), np.concatenate(labels), counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fit_quality", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="the preset (name or folder) the score is for")
    parser.add_argument("--data", nargs="+", required=True, help="validation faces (clean and occluded)")
    parser.add_argument("--success", type=float, default=DEFAULT_SUCCESS, help="NME ip under which a face is right")
    parser.add_argument("--out", required=True, help="the quality.json to write (in the preset folder)")
    args = parser.parse_args(argv)
    try:
        landmarker = CropLandmarker(load_crop_model(args.model, argument="--model"))
        records = [r for path in args.data for r in load_records(path)]
        if not records:
            raise DataError(f"--data {args.data}: no faces")
        features, labels, counts = collect(landmarker, records, args.success)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if labels.min() == labels.max():
        print("error: the faces are all right or all wrong: no quality score can be fitted", file=sys.stderr)
        return 2
    regression = LogisticRegression(class_weight="balanced")
    held_out = cross_val_predict(regression, features, labels, cv=5, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(labels, held_out))
    regression.fit(features, labels)
    details = {**counts, "success_nme_ip": args.success, "cross_validated_auc": round(auc, 4),
               "data": [str(p) for p in args.data]}
    model = QualityModel(tuple(float(w) for w in regression.coef_[0]), float(regression.intercept_[0]), details)
    write_bytes_atomically(args.out, (json.dumps(model.to_dict(), indent=2) + "\n").encode())
    print(f"{counts['faces']} faces ({counts['faces_right']} right) and {counts['off_face_crops']} off-face crops: "
          f"cross-validated ROC AUC {auc:.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
