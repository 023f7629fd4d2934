"""The shared evaluation CLI behind `python -m eval.w300`, `eval.cofw`, `eval.aflw`, `eval.wflw`.

Protocol (docs/EVALUATION.md): NME per face = mean point-to-point error /
normaliser, averaged over faces; both "ip" and "io" are always reported, the
failure rate and AUC at 8 % and 10 % use the benchmark's own normaliser.

Face boxes (`--box`): "gt" (default) the tight box of the ground-truth
landmarks; "dataset" the box stored with each face; "detector" what users get:
the product's path from a photo to landmarks (`FaceLandmarker.landmarks_in`:
the `--detector`, by default the bundled YuNet, then up to `--refine-crops`
more crops, each around the previous pass's landmarks), the face whose final
box best overlaps the tight ground-truth box. A face the detector misses (no
face with IoU >= MIN_IOU) gets NME = inf: it counts as a failure at every
threshold and adds zero area to the AUC, but it is left out of the mean NMEs
(which are over the faces found); metrics.json reports `num_missed`.

User errors (DataError, missing files, bad arguments) print one line to
stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.record import landmark_box
from datasets.schemes import LandmarkScheme
from eval import report
from eval.metrics import FAILURE_THRESHOLDS, NORMALIZER_NAMES, nme, nme_visible, normalizer, visibility_auc
from eval.models import MEAN_SHAPE, load_predictor
from eval.plots import save_ced_plot
from rar_keras.detectors.base import box_iou
from rar_keras.detectors.factory import make_detector
from rar_keras.inference.box_refinement import DEFAULT_REFINE_CROPS
from rar_keras.inference.crop_models import RUNTIMES, uses_keras
from rar_keras.inference.face_landmarker import DEFAULT_DETECTOR, FaceLandmarker, LandmarkerOptions
from rar_keras.inference.overlay import save_overlay
from rar_keras.utils.quiet import import_tensorflow

EXIT_USER_ERROR = 2
BATCH_SIZE = 32
NUM_OVERLAYS = 3            # best and worst faces drawn
BOX_PROTOCOLS = ("gt", "dataset", "detector")
MIN_IOU = 0.1      # a detected face overlapping the annotated face's box less than this is another face
MAT_DEFAULT_SPLIT = "test"
CED_FILE, METRICS_FILE, PER_FACE_FILE = "ced.png", "metrics.json", "per_face.csv"


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """Defaults of one benchmark CLI.

    Args:
        name: printed name, e.g. "300-W".
        scheme: the landmark scheme of its faces.
        fr_normalizer: normaliser for failure rate, AUC and CED ("ip", "io" or "box").
        module: the entry point, e.g. "eval.w300" (for usage lines).
        normalizers: NMEs reported (per face and mean).
    """

    name: str
    scheme: LandmarkScheme
    fr_normalizer: str
    module: str
    normalizers: tuple[str, ...] = ("ip", "io")


def _positive_int(text: str) -> int:
    """An argparse type: a positive integer, else a usage error (argparse names the flag, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser(benchmark: Benchmark) -> argparse.ArgumentParser:
    """The CLI arguments shared by every benchmark."""
    parser = argparse.ArgumentParser(prog=f"python -m {benchmark.module}",
                                     description=f"Evaluate a landmark model on {benchmark.name}.")
    parser.add_argument("--data", required=True, help="dataset file, or a folder of image + .pts pairs")
    parser.add_argument("--model", default="mean-shape",
                        help="'mean-shape', a preset name, or a .keras / .tflite / .onnx file")
    parser.add_argument("--train-data", help="training set for the mean-shape model")
    parser.add_argument("--box", choices=BOX_PROTOCOLS, default="gt",
                        help="face box given to the model (default: tight box of the ground truth)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help="with --box detector: yunet (bundled), blazeface, yunet:PATH, ...")
    parser.add_argument("--refine-crops", type=_positive_int, default=DEFAULT_REFINE_CROPS,
                        help="with --box detector: how many times at most a face is cropped again around "
                             "the previous pass's landmarks (the API's refine_crops)")
    parser.add_argument("--split", choices=("train", "test"), help="split of a .mat file (default test)")
    parser.add_argument("--image-root", help="folder that image paths in the annotation file are relative to")
    parser.add_argument("--margin", type=float,
                        help="crop margin of a crop model (default: the one stored in the model file)")
    parser.add_argument("--per-step", action="store_true",
                        help="also report NME after each RAR stage (runs the Keras model)")
    parser.add_argument("--runtime", default="auto", choices=RUNTIMES,
                        help="a preset runs its shipped .tflite in LiteRT (auto, litert) or in Keras (keras)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    parser.add_argument("--flip", action="store_true",
                        help="flip test: average each face's landmarks with those of its mirror image "
                             "(crop models; twice the compute)")
    parser.add_argument("--out", required=True, help="output folder")
    return parser


def _load_faces(args, benchmark: Benchmark):
    if not os.path.exists(args.data):
        raise DataError(f"--data {args.data}: no such file or folder")

    split = args.split or (MAT_DEFAULT_SPLIT if args.data.lower().endswith(".mat") else None)
    records = load_records(args.data, split=split, image_root=args.image_root)
    if not records:
        raise DataError(f"--data {args.data}: no annotated faces found")
    num = benchmark.scheme.num_points
    wrong = [r for r in records if r.landmarks.shape[0] != num]
    if wrong:
        raise DataError(f"--data {args.data}: {wrong[0].path} has {wrong[0].landmarks.shape[0]} landmarks; "
                        f"{benchmark.name} ({benchmark.scheme.name}) needs {num}")
    return records


def _boxes(args, records) -> np.ndarray:
    """(N, 4) boxes for the model: the tight ground-truth box, or the dataset's."""
    if args.box == "dataset":
        return np.stack([r.box for r in records])
    return np.stack([landmark_box(r.landmarks) for r in records])


def _detector_predictions(args, predictor, records, progress):
    """The product's photo -> landmarks path on every image: (predictions (N, L, 2), visibility (N, L)
    or None, the final boxes (N, 4), found (N,) bool)."""
    if not hasattr(predictor, "crop_model"):
        raise DataError(f"--box detector needs a crop model, not {args.model}")
    landmarker = FaceLandmarker(predictor.crop_model, make_detector(args.detector),
                                LandmarkerOptions(model=args.model, detector=args.detector,
                                                  refine_crops=args.refine_crops))
    num = records[0].landmarks.shape[0]
    preds = np.full((len(records), num, 2), np.nan, np.float32)
    visibility = np.full((len(records), num), np.nan, np.float32)
    boxes = np.stack([landmark_box(r.landmarks) for r in records])
    found = np.zeros(len(records), dtype=bool)
    for i, record in enumerate(progress(records, desc="detecting", unit="face")):
        outputs, final_boxes, _ = landmarker.landmarks_in(record.image)
        if not len(final_boxes):
            continue
        overlaps = box_iou(boxes[i], final_boxes)
        best = int(np.argmax(overlaps))
        if overlaps[best] < MIN_IOU:
            continue
        found[i], boxes[i], preds[i] = True, final_boxes[best], outputs["landmarks"][best]
        if "visibility" in outputs:
            visibility[i] = outputs["visibility"][best]
    return preds, (None if np.isnan(visibility).all() else visibility), boxes, found


def has_steps(predictor) -> bool:
    """Whether `predictor.predict_steps` gives per-stage landmarks."""
    return bool(getattr(predictor, "has_steps", hasattr(predictor, "predict_steps")))


def _predict(predictor, records, boxes, indices, progress, per_step: bool):
    """Predictions (N, L, 2) (NaN where not predicted), the predicted visibility (N, L) when the model
    gives it (else None), and per-stage predictions when asked and available."""
    num = records[0].landmarks.shape[0]
    preds = np.full((len(records), num, 2), np.nan, np.float32)
    visibility = np.full((len(records), num), np.nan, np.float32)
    steps: dict[str, np.ndarray] = {}
    with_steps = per_step and has_steps(predictor)
    bar = progress(total=len(indices), desc="predicting", unit="face")
    for start in range(0, len(indices), BATCH_SIZE):
        chunk = indices[start:start + BATCH_SIZE]
        images = [records[i].image for i in chunk]
        if hasattr(predictor, "predict_outputs"):
            outputs = predictor.predict_outputs(images, boxes[chunk])
            preds[chunk] = outputs["landmarks"]
            if "visibility" in outputs:
                visibility[chunk] = outputs["visibility"]
        else:
            preds[chunk] = predictor.predict(images, boxes[chunk])
        if with_steps:
            for stage, points in predictor.predict_steps(images, boxes[chunk]).items():
                if np.ndim(points) == 3:     # landmarks; the attention centres are indices
                    steps.setdefault(stage, np.full_like(preds, np.nan))[chunk] = points
        bar.update(len(chunk))
    bar.close()
    return preds, (None if np.isnan(visibility).all() else visibility), (steps if with_steps else None)


def _face_nmes(preds, gt, records, benchmark: Benchmark, found) -> dict[str, np.ndarray]:
    dataset_boxes = np.stack([r.box for r in records])
    out = {}
    for kind in benchmark.normalizers:
        values = nme(np.where(np.isfinite(preds), preds, 0.0), gt,
                     normalizer(gt, benchmark.scheme, kind, boxes=dataset_boxes))
        out[kind] = np.where(found, values, np.inf)
    return out


def _visibility_metrics(records, preds, gt, visibility, benchmark: Benchmark, found) -> dict:
    """With occlusion flags in the data: `visibility_auc` (when the model predicts visibility) and
    the NMEs over the visible points only, `nme_<normaliser>_visible`."""
    if all(r.visibility is None for r in records):
        return {}

    flags = np.stack([np.ones(len(r.landmarks), bool) if r.visibility is None else r.visibility > 0
                      for r in records])
    dataset_boxes = np.stack([r.box for r in records])
    out = {}
    for kind in benchmark.normalizers:
        values = nme_visible(np.where(np.isfinite(preds), preds, 0.0), gt, normalizer(
            gt, benchmark.scheme, kind, boxes=dataset_boxes), flags)
        out[f"nme_{kind}_visible"] = report.mean_finite(np.where(found, values, np.nan))
    out["num_occluded_points"] = int((~flags[found]).sum())
    if visibility is not None:
        out["visibility_auc"] = visibility_auc(visibility[found], flags[found])
    return out


def _save_overlays(out_dir: pathlib.Path, records, preds, visibility, boxes, errors, found, scheme) -> list[str]:
    order = [i for i in np.argsort(errors, kind="stable") if found[i]]
    chosen = [("best", i) for i in order[:NUM_OVERLAYS]] + [("worst", i) for i in order[::-1][:NUM_OVERLAYS]]
    written = []
    for rank, (tag, i) in enumerate(chosen):
        name = f"{tag}_{rank % NUM_OVERLAYS + 1}_{pathlib.Path(records[i].path).stem}.png"
        save_overlay(out_dir / name, records[i].image, preds[i], records[i].landmarks, scheme,
                     caption=f"NME {errors[i] * 100:.2f} %", box=boxes[i],
                     visibility=None if visibility is None else visibility[i])
        written.append(name)
    return written


def evaluate(args, benchmark: Benchmark) -> dict:
    """Runs one evaluation and writes the report files; returns the metrics dict."""
    def progress(*a, **kw):
        return tqdm(*a, file=sys.stderr, dynamic_ncols=True, **kw)

    records = _load_faces(args, benchmark)
    if args.flip and args.model == "mean-shape":
        raise DataError("--flip: the mean-shape baseline has no crop model to flip")
    runtime = "keras" if args.per_step and args.runtime == "auto" else args.runtime
    if args.model != MEAN_SHAPE and uses_keras(args.model, runtime):
        import_tensorflow(args.verbose)
    predictor = load_predictor(args.model, benchmark.scheme, args.train_data, args.data, args.margin,
                               flip_test=args.flip, runtime=runtime)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    if args.box == "detector":
        preds, visibility, boxes, found = _detector_predictions(args, predictor, records, progress)
        steps = None
    else:
        boxes, found = _boxes(args, records), np.ones(len(records), bool)
        preds, visibility, steps = _predict(predictor, records, boxes, np.flatnonzero(found), progress,
                                            args.per_step)
    gt = np.stack([r.landmarks for r in records])
    nmes = _face_nmes(preds, gt, records, benchmark, found)
    summary = {**report.summarize(nmes, benchmark.fr_normalizer),
               **_visibility_metrics(records, preds, gt, visibility, benchmark, found)}
    metrics = {**summary, "num_faces": len(records), "num_missed": int((~found).sum()),
               "benchmark": benchmark.name, "scheme": benchmark.scheme.name, "data": args.data,
               "model": args.model, "runtime": runtime, "flip_test": bool(args.flip), "box_protocol": args.box,
               **({"detector": args.detector, "refine_crops": args.refine_crops} if args.box == "detector" else {}),
               "fr_normalizer": benchmark.fr_normalizer,
               "normalizers": {k: NORMALIZER_NAMES[k] for k in benchmark.normalizers},
               "thresholds": list(FAILURE_THRESHOLDS), "units": "fractions (x100 for %)"}
    if steps is not None:
        metrics["per_step"] = {stage: {f"nme_{k}": report.mean_finite(v) for k, v in
                                       _face_nmes(points, gt, records, benchmark, found).items()}
                               for stage, points in steps.items()}

    fr_kind = benchmark.fr_normalizer
    report.write_json(out_dir / METRICS_FILE, metrics)
    report.write_per_face_csv(out_dir / PER_FACE_FILE, [r.path for r in records], nmes, found)
    save_ced_plot({f"{args.model}, NME {k} ({NORMALIZER_NAMES[k]})": v for k, v in nmes.items()},
                  max(FAILURE_THRESHOLDS), out_dir / CED_FILE, title=f"{benchmark.name}, box: {args.box}")
    _save_overlays(out_dir, records, preds, visibility, boxes, nmes[fr_kind], found, benchmark.scheme)
    return metrics


def _print_results(metrics: dict, args, benchmark: Benchmark) -> None:
    missed = f", {metrics['num_missed']} missed by the detector" if metrics["num_missed"] else ""
    flip = " (flip test)" if args.flip else ""
    title = (f"{benchmark.name}: {metrics['num_faces']} faces{missed} | model {args.model}{flip} | "
             f"box: {args.box} | {args.data}")
    print(report.format_table(metrics, title, benchmark.fr_normalizer))
    if args.per_step:
        if "per_step" in metrics:
            steps = {stage: {k[4:]: v for k, v in values.items()} for stage, values in metrics["per_step"].items()}
            print(report.format_steps_table(steps))
        else:
            print(f"per-step NME: unavailable for model {args.model} (it has no predict_steps)")
    print(f"wrote {args.out}/{{{METRICS_FILE}, {PER_FACE_FILE}, {CED_FILE}, overlays}}")


def main(benchmark: Benchmark, argv: Optional[Sequence[str]] = None) -> int:
    """Parses `argv`, evaluates, prints the table; returns the exit code."""
    args = build_parser(benchmark).parse_args(argv)
    try:
        metrics = evaluate(args, benchmark)
    except (DataError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    _print_results(metrics, args, benchmark)
    return 0
