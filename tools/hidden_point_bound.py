"""`python -m tools.hidden_point_bound`: how well any shape prior can place hidden landmarks, beside
the model's own hidden points at every stage.

    python -m tools.hidden_point_bound --train $RAR_KERAS_DATA/300w/afw \\
        $RAR_KERAS_DATA/300w/helen/trainset $RAR_KERAS_DATA/300w/lfpw/trainset \\
        --data VAL_OCCLUDED/annotations.json --model w300_base

A Gaussian shape model (the mean and covariance of the training shapes, each placed by the
similarity that maps its points at the face's visible indices onto their Procrustes mean: the best
linear shape prior those faces give) predicts each face's hidden points as their conditional mean
given its **true** visible points (`eval.occlude`'s flags say which points are hidden; a face with
fewer than 3 visible points is left out). That is more than a robust start or any shape-prior correction can know
at inference, where the visible points are only the detector's. Its hidden-point error is
therefore what a shape prior could at best bring to the hidden points; the table prints it beside
the hidden-point error of the model's `S_d`, its start `S_0` and each refinement step (Keras,
ground-truth box, one pass), and the model's output with the points it predicts hidden filled in
by the same prior from its own visible points. Errors are in % of the inter-pupil distance, averaged
over points; FR@10 over faces.

The validation split of `--train` that `rar_keras.train` holds out (same fraction and seed) is
left out of the shape model, so `--data` may be an occluded copy of those validation faces.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

import numpy as np

from datasets.errors import DataError
from datasets.geometry import apply_affine, invert_affine, similarity_matrix
from datasets.loaders import load_records
from datasets.record import landmark_box
from datasets.schemes import get_scheme
from eval.metrics import normalizer
from rar_keras.models.config import POSTERIOR_STAGE
from rar_keras.models.shape_bank import generalised_procrustes

DEFAULT_RIDGE = 1e-4          # added to the visible block's covariance (aligned shapes: unit RMS radius)
MIN_VISIBLE = 3               # points needed to place the shape model by a similarity
MIN_FILL_VISIBLE = 10         # the model's own shapes: fewer visible points than this are left as they are
FAILURE_THRESHOLD = 10.0      # FR@10, % of the inter-pupil distance
FILL_THRESHOLDS = (0.5, 0.3)  # visibility below which the model's output points count as hidden


def conditional_mean(mean: np.ndarray, covariance: np.ndarray, values: np.ndarray, known: np.ndarray,
                     ridge: float = DEFAULT_RIDGE) -> np.ndarray:
    """E[x_unknown | x_known = values[known]] of a Gaussian N(mean, covariance), ridge added to the
    known block; returns `values` with the unknown entries replaced."""
    known = np.asarray(known, bool)
    unknown = ~known
    block = covariance[np.ix_(known, known)] + ridge * np.eye(int(known.sum()))
    filled = np.array(values, np.float64)
    filled[unknown] = mean[unknown] + covariance[np.ix_(unknown, known)] @ np.linalg.solve(
        block, filled[known] - mean[known])
    return filled


def align_on(shapes: np.ndarray, reference: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Every shape (N, L, 2) moved by the least-squares similarity that maps its `subset` points onto
    the reference's (one closed form for all shapes: points as complex numbers, z -> a z + b)."""
    z = shapes[..., 0] + 1j * shapes[..., 1]
    r = reference[subset, 0] + 1j * reference[subset, 1]
    origin, target = z[:, subset].mean(axis=1, keepdims=True), r.mean()
    centred = z[:, subset] - origin
    a = np.sum(np.conj(centred) * (r - target), axis=1, keepdims=True) / np.sum(np.abs(centred) ** 2, axis=1,
                                                                                  keepdims=True)
    moved = a * (z - origin) + target
    return np.stack([moved.real, moved.imag], axis=-1)


class GaussianShapeModel:
    """The training shapes as a Gaussian, in the frame that a face's visible points define.

    For a face, every training shape is placed by the similarity that maps its points at the face's
    visible indices onto the Procrustes mean (so training shapes and the face share one frame);
    the face's hidden points are the conditional mean of the Gaussian of those placed shapes given
    its visible points, mapped back.

    Args:
        shapes: training shapes (N, L, 2), any position, scale and rotation.
        ridge: added to the visible block of the covariance (shapes of RMS radius 1).
    """

    def __init__(self, shapes: np.ndarray, ridge: float = DEFAULT_RIDGE):
        shapes = np.asarray(shapes, np.float64)
        if shapes.ndim != 3 or shapes.shape[2] != 2 or len(shapes) < 2:
            raise DataError(f"GaussianShapeModel: shapes must be (N >= 2, L, 2), got {shapes.shape}")
        self.shapes = shapes
        _, self.reference = generalised_procrustes(shapes)
        self.ridge = ridge

    def fill_hidden(self, points: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """`points` (L, 2) with the hidden ones (visible False) replaced by their conditional mean given
        the visible ones, in the points' own frame."""
        visible = np.asarray(visible, bool)
        if visible.sum() < MIN_VISIBLE:
            raise DataError(f"fill_hidden: {int(visible.sum())} visible points; needs {MIN_VISIBLE}")
        placed = align_on(self.shapes, self.reference, visible).reshape(len(self.shapes), -1)
        to_model = similarity_matrix(points[visible], self.reference[visible])
        in_model = apply_affine(np.asarray(points, np.float64), to_model).reshape(-1)
        filled = conditional_mean(placed.mean(axis=0), np.cov(placed, rowvar=False), in_model,
                                  np.repeat(visible, 2), self.ridge)
        return apply_affine(filled.reshape(-1, 2), invert_affine(to_model))


def point_errors(predicted: np.ndarray, truth: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """(N, L) point errors in % of each face's normaliser."""
    return 100.0 * np.linalg.norm(np.asarray(predicted, np.float64) - truth, axis=-1) / norms[:, None]


def split_errors(errors: np.ndarray, hidden: np.ndarray) -> dict:
    """Mean error of the hidden and of the visible points, mean face NME and FR@10 (%)."""
    faces = errors.mean(axis=1)
    return {"hidden": float(errors[hidden].mean()), "visible": float(errors[~hidden].mean()),
            "face_nme": float(faces.mean()), "fr10": 100.0 * float(np.mean(faces > FAILURE_THRESHOLD))}


def fill_predicted_hidden(shape_model: GaussianShapeModel, shapes: np.ndarray, visibility: np.ndarray,
                          threshold: float) -> np.ndarray:
    """Each shape's points predicted hidden (visibility below `threshold`) filled from its other points;
    a face with none, or with fewer than `MIN_FILL_VISIBLE` points left, is kept as it is."""
    filled = np.array(shapes, np.float64)
    for index, (shape, seen) in enumerate(zip(filled, np.asarray(visibility) >= threshold)):
        if not seen.all() and seen.sum() >= MIN_FILL_VISIBLE:
            filled[index] = shape_model.fill_hidden(shape, seen)
    return filled


def training_shapes(paths: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    from rar_keras.training.trainer import load_faces, split_validation

    train, _ = split_validation(load_faces(paths), val_fraction, seed)
    return np.stack([np.asarray(record.landmarks, np.float64) for record in train])


def model_stages(model: str, records) -> dict:
    """{stage: (N, L, 2)} image-pixel predictions of the model's stages on the ground-truth boxes, and
    "visibility" (N, L)."""
    from rar_keras.inference.crop_landmarker import CropLandmarker
    from rar_keras.inference.crop_models import load_crop_model

    landmarker = CropLandmarker(load_crop_model(model, runtime="keras"))
    boxes = np.stack([landmark_box(record.landmarks) for record in records])
    steps = landmarker.predict_steps([record.image for record in records], boxes)
    return {name: value for name, value in steps.items()
            if name == "visibility" or (np.ndim(value) == 3 and np.shape(value)[2] == 2)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.hidden_point_bound", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True, help="training datasets (the shape model)")
    parser.add_argument("--data", required=True, help="faces with per-landmark flags (eval.occlude's output)")
    parser.add_argument("--model", default=None, help="a preset or .keras file to compare, stage by stage")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="held out of --train, as in training")
    parser.add_argument("--seed", type=int, default=0, help="the training split's seed")
    parser.add_argument("--ridge", type=float, default=DEFAULT_RIDGE)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    return parser.parse_args(argv)


def load_faces_with_flags(path: str):
    """(records, truth (N, L, 2), hidden (N, L)) of the faces of `path` that have hidden points and
    at least `MIN_VISIBLE` visible ones."""
    records = load_records(path)
    if any(record.visibility is None for record in records):
        raise DataError(f"--data {path}: every face needs per-landmark flags (eval.occlude writes them)")
    records = [r for r in records if MIN_VISIBLE <= int(np.sum(np.asarray(r.visibility) >= 0.5)) < len(r.landmarks)]
    if not records:
        raise DataError(f"--data {path}: no face has both hidden points and {MIN_VISIBLE} or more visible ones")
    truth = np.stack([np.asarray(record.landmarks, np.float64) for record in records])
    hidden = np.stack([np.asarray(record.visibility) < 0.5 for record in records])
    return records, truth, hidden


def measure(args) -> dict:
    """{predictor: split errors} for the command line's arguments."""
    records, truth, hidden = load_faces_with_flags(args.data)
    shapes = training_shapes(args.train, args.val_fraction, args.seed)
    if shapes.shape[1] != truth.shape[1]:
        raise DataError(f"--train has {shapes.shape[1]} landmarks per face, --data {truth.shape[1]}")
    shape_model = GaussianShapeModel(shapes, args.ridge)
    norms = normalizer(truth, get_scheme(records[0].scheme), "ip")
    print(f"{len(records)} faces with hidden points, {int(hidden.sum())} of {hidden.size} points hidden")
    filled = np.stack([shape_model.fill_hidden(t, ~h) for t, h in zip(truth, hidden)])
    rows = {"shape prior from the true visible points": split_errors(point_errors(filled, truth, norms), hidden)}
    if args.model:
        stages = model_stages(args.model, records)
        visibility = stages.pop("visibility")
        for stage, predicted in stages.items():
            rows[f"{args.model} {stage}"] = split_errors(point_errors(predicted, truth, norms), hidden)
        last = max((name for name in stages if name.startswith("step_")), key=lambda n: int(n[5:]))
        output = stages.get(POSTERIOR_STAGE, stages[last])      # what the model outputs
        for threshold in FILL_THRESHOLDS:
            filled_output = fill_predicted_hidden(shape_model, output, visibility, threshold)
            rows[f"{args.model} output, points with visibility < {threshold} filled by the shape prior"] = \
                split_errors(point_errors(filled_output, truth, norms), hidden)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        rows = measure(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("errors in % of the inter-pupil distance\n"
          "| predictor | hidden points | visible points | face NME | FR@10 % |\n|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['hidden']:.2f} | {row['visible']:.2f} | {row['face_nme']:.2f} | {row['fr10']:.1f} |")
    if args.out:
        from rar_keras.utils.atomic import write_bytes_atomically

        write_bytes_atomically(args.out, json.dumps(rows, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
