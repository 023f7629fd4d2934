"""Turns the CLI's `--model` spec into a Predictor.

Specs:
    "mean-shape"            the mean training shape placed in the box (baseline)
    path/to/model.keras     a saved RAR model (rar_keras.inference)
    preset name             a shipped preset, e.g. "rar_300w" (rar_keras.inference)
    path/to/model.tflite    a LiteRT crop model (see eval.runtimes)
    path/to/model.onnx      an ONNX crop model (see eval.runtimes)
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional

from datasets.errors import DataError
from datasets.geometry import DEFAULT_MARGIN
from datasets.schemes import W300, LandmarkScheme
from eval.predictors import CropPredictor, MeanShapePredictor, Predictor

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
    from datasets.loaders import load_records

    shapes = []
    for path in paths:
        split = "train" if path.lower().endswith(MAT_SUFFIX) else None
        shapes.extend(r.landmarks for r in load_records(path, split=split))  # images dropped per folder
    predictor = MeanShapePredictor.from_shapes(shapes, scheme)
    if predictor.mean_shape_unit.shape[0] != scheme.num_points:
        raise DataError(f"--train-data has {predictor.mean_shape_unit.shape[0]} landmarks per face; "
                        f"{scheme.name} needs {scheme.num_points}")
    return predictor


def _load_keras(spec: str, scheme: LandmarkScheme, margin: Optional[float], flip_test: bool) -> CropPredictor:
    """A RAR model (rar_keras.inference: crops -> crop pixels, with predict_steps) wrapped to work on images."""
    try:
        from rar_keras.inference import load_keras_predictor
    except ImportError as err:
        raise DataError(f"--model {spec}: Keras models need rar_keras.inference, which is not "
                        f"available here ({err})") from None
    try:
        landmarker = load_keras_predictor(spec, flip_test=flip_test)
    except DataError:
        raise
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise DataError(f"--model {spec}: could not load ({err})") from None
    model_scheme = landmarker.scheme
    if model_scheme.name != scheme.name:
        raise DataError(f"--model {spec}: a model for the {model_scheme.name} scheme "
                        f"({model_scheme.num_points} landmarks); this benchmark needs a {scheme.name} "
                        f"model ({scheme.num_points} landmarks)")
    return CropPredictor(landmarker, landmarker.input_size, landmarker.margin if margin is None else margin,
                         scheme, steps_fn=getattr(landmarker, "predict_steps", None))


def _load_runtime(spec: str, scheme: LandmarkScheme, margin: Optional[float], flip_test: bool) -> CropPredictor:
    from eval import runtimes
    from rar_keras.flip_test import FlipAveraged

    loaded = runtimes.load_tflite(spec) if spec.endswith(".tflite") else runtimes.load_onnx(spec)
    if loaded.num_points != scheme.num_points:
        raise DataError(f"--model {spec}: predicts {loaded.num_points} landmarks; "
                        f"{scheme.name} needs {scheme.num_points}")
    if margin is None:
        margin = loaded.margin if loaded.margin is not None else DEFAULT_MARGIN
    crop_fn = FlipAveraged(loaded.crop_fn, scheme, loaded.input_size) if flip_test else loaded.crop_fn
    return CropPredictor(crop_fn, loaded.input_size, margin, scheme)


def _is_preset_name(spec: str) -> bool:
    return os.sep not in spec and "/" not in spec and not pathlib.Path(spec).suffix


def load_predictor(spec: str, scheme: LandmarkScheme, train_data: Optional[str] = None,
                   data_path: Optional[str] = None, margin: Optional[float] = None,
                   flip_test: bool = False) -> Predictor:
    """Loads the predictor named by `spec` (see the module docstring).

    Args:
        spec: "mean-shape", a .keras/.tflite/.onnx path or a preset name.
        scheme: the benchmark's landmark scheme; the model must predict it.
        train_data: training set for "mean-shape".
        data_path: the evaluated data (to find 300-W's train folders).
        margin: crop margin of crop models, overriding the one stored in the file.
        flip_test: crop models average each prediction with the one on the mirrored crop.

    Raises:
        DataError: missing file, unknown spec or a model of another scheme.
    """
    if spec == MEAN_SHAPE:
        return load_mean_shape(scheme, train_data, data_path)
    suffix = pathlib.Path(spec).suffix.lower()
    if suffix in (".keras", ".tflite", ".onnx"):
        if not os.path.isfile(spec):
            raise DataError(f"--model {spec}: no such file")
        if suffix != ".keras":
            return _load_runtime(spec, scheme, margin, flip_test)
    elif not _is_preset_name(spec) or os.path.exists(spec):
        raise DataError(f"--model {spec}: unknown model spec (expected {MEAN_SHAPE!r}, a preset name "
                        "or a .keras, .tflite or .onnx file)")
    return _load_keras(spec, scheme, margin, flip_test)
