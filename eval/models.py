"""Turns the CLI's `--model` spec into a Predictor.

Specs:
    "mean-shape"            the mean training shape placed in the box (baseline)
    anything else           a model spec (`rar_keras.inference.model_spec`): a preset name or
                            folder, or a .keras / .tflite / .onnx file, run through the product's
                            crop path (`rar_keras.inference.crop_landmarker.CropLandmarker`)
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.schemes import W300, LandmarkScheme
from eval.predictors import MeanShapePredictor, Predictor
from rar_keras.inference.crop_landmarker import CropLandmarker
from rar_keras.inference.crop_models import load_crop_model

MEAN_SHAPE = "mean-shape"
W300_TRAIN_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset")
MAT_SUFFIX = ".mat"


def find_300w_root(data_path: str) -> Optional[pathlib.Path]:
    """The 300-W root (holding afw/, helen/, lfpw/) at or above `data_path`, or None."""
    path = pathlib.Path(data_path).resolve()
    for candidate in (path, *path.parents):
        if all((candidate / name).is_dir() for name in ("afw", "helen", "lfpw")):
            return candidate
    return None


def _train_paths(scheme: LandmarkScheme, train_data: Optional[str], data_path: Optional[str]) -> list[str]:
    if train_data:
        if not os.path.exists(train_data):
            raise DataError(f"--train-data {train_data}: no such file or folder")
        return [train_data]
    root = find_300w_root(data_path) if (data_path and scheme.name == W300.name) else None
    folders = [root / sub for sub in W300_TRAIN_FOLDERS if (root / sub).is_dir()] if root else []
    if not folders:
        raise DataError(f"the {MEAN_SHAPE} model needs training shapes: pass --train-data PATH "
                        "(a training set in the same format as --data)")
    return [str(folder) for folder in folders]


def load_mean_shape(scheme: LandmarkScheme, train_data: Optional[str] = None,
                    data_path: Optional[str] = None) -> MeanShapePredictor:
    """Builds the mean-shape baseline from `train_data`, or from the 300-W train folders beside `data_path`."""
    paths = _train_paths(scheme, train_data, data_path)

    shapes = []
    for path in paths:
        split = "train" if path.lower().endswith(MAT_SUFFIX) else None
        shapes.extend(r.landmarks for r in load_records(path, split=split))  # images dropped per folder
    predictor = MeanShapePredictor.from_shapes(shapes, scheme)
    if predictor.mean_shape_unit.shape[0] != scheme.num_points:
        raise DataError(f"--train-data has {predictor.mean_shape_unit.shape[0]} landmarks per face; "
                        f"{scheme.name} needs {scheme.num_points}")
    return predictor


def load_predictor(spec: str, scheme: LandmarkScheme, train_data: Optional[str] = None,
                   data_path: Optional[str] = None, margin: Optional[float] = None,
                   flip_test: bool = False, runtime: str = "auto") -> Predictor:
    """Loads the predictor named by `spec` (see the module docstring).

    Args:
        spec: "mean-shape", a preset name or folder, or a .keras/.tflite/.onnx path.
        scheme: the benchmark's landmark scheme; the model must predict it.
        train_data: training set for "mean-shape".
        data_path: the evaluated data (to find 300-W's train folders).
        margin: crop margin of crop models, overriding the one stored in the file.
        flip_test: crop models average each prediction with the one on the mirrored crop.
        runtime: for a preset, "auto" / "litert" (its shipped .tflite) or "keras".

    Raises:
        DataError: missing file, unknown spec or a model of another scheme.
    """
    if spec == MEAN_SHAPE:
        return load_mean_shape(scheme, train_data, data_path)

    crop_model = load_crop_model(spec, flip_test=flip_test, argument="--model", runtime=runtime)
    model_scheme = crop_model.scheme
    if model_scheme is None or model_scheme.num_points != scheme.num_points:
        found = f"{model_scheme.name} ({model_scheme.num_points} landmarks)" if model_scheme else "an unknown scheme"
        raise DataError(f"--model {spec}: a model for {found}; this benchmark needs a {scheme.name} model "
                        f"({scheme.num_points} landmarks)")
    return CropLandmarker(crop_model, margin=margin)
