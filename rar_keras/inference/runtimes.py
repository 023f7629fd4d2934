"""Crop models exported to LiteRT (.tflite) and ONNX (.onnx), run without TensorFlow.

Contract with `export/`: the model takes one face crop (N, S, S, 3) RGB in
pixel values 0..255 (uint8, or float32 holding the same values; NCHW is
recognised too) and returns landmarks in crop pixels as an output named
"landmarks" (a TFLite signature output name counts; else the first output of
shape (N, L, 2)). An optional
`margin` (crop context, see `datasets.geometry.crop_matrix`) is read from
the TFLite metadata (an entry named "margin" holding the number as text, or
any entry holding a JSON object with a "margin" key) or from the ONNX
`metadata_props` key "margin"; the landmark scheme likewise from "scheme" (else it is
inferred from the number of landmarks).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Optional

import numpy as np

from datasets.errors import DataError
from datasets.geometry import DEFAULT_MARGIN
from datasets.schemes import SCHEMES, LandmarkScheme, scheme_for_count
from rar_keras.inference.contract import LANDMARK_OFFSET_KEY, read_contract, tflite_metadata_entries
from rar_keras.inference.flip_test import FlipAveraged
from rar_keras.inference.quality import QualityModel
from rar_keras.utils.quiet import litert_interpreter

LANDMARKS_OUTPUT = "landmarks"
# The outputs of an exported RAR model (export.graph.OUTPUT_NAMES); a foreign file may have only landmarks.
NAMED_OUTPUTS = ("landmarks", "visibility", "confidence", "attention")
MARGIN_KEY = "margin"
SCHEME_KEY = "scheme"


@dataclasses.dataclass
class CropModel:
    """A loaded crop model: `model.predict(crops)` -> its named outputs, `model(crops)` -> landmarks.

    Args:
        outputs_fn: crops (N, S, S, 3) uint8 -> {"landmarks": (N, L, 2) crop pixels, and whichever of
            "visibility" (N, L), "confidence" (N, L), "attention" (N, T) the file has}.
        input_size: S.
        num_points: L.
        margin: the margin stored in the file, or None.
        scheme: the landmark scheme stored in the file, else the one with L points (None if none).
        quality: the per-face quality model stored in the file's contract, if any.
    """

    outputs_fn: Callable[[np.ndarray], dict]
    input_size: int
    num_points: int
    margin: Optional[float]
    scheme: Optional[LandmarkScheme] = None
    quality: Optional[QualityModel] = None

    def predict(self, crops) -> dict:
        return self.outputs_fn(crops)

    def __call__(self, crops) -> np.ndarray:
        return self.outputs_fn(crops)[LANDMARKS_OUTPUT]


def _parse_margin(text: str) -> Optional[float]:
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, dict):
        value = value.get(MARGIN_KEY)
    return float(value) if isinstance(value, (int, float)) else None


def _scheme(name: Optional[str], num_points: int) -> Optional[LandmarkScheme]:
    if name in SCHEMES and SCHEMES[name].num_points == num_points:
        return SCHEMES[name]
    try:
        return scheme_for_count(num_points)
    except DataError:
        return None


def _tflite_margin(entries: list[tuple[str, bytes]]) -> Optional[float]:
    for name, data in entries:
        margin = _parse_margin(data.decode("utf-8", "replace").strip("\x00 \n"))
        if margin is not None and (name == MARGIN_KEY or data.lstrip().startswith(b"{")):
            return margin
    return None


def _tflite_scheme_name(entries: list[tuple[str, bytes]]) -> Optional[str]:
    for _, data in entries:
        try:
            value = json.loads(data.decode("utf-8", "replace").strip("\x00 \n"))
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get(SCHEME_KEY), str):
            return value[SCHEME_KEY]
    return None


def _check_crops(crops, size: int, source: str) -> np.ndarray:
    """The crops as an array, or a DataError naming `source` when their shape or pixel type is wrong."""
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 and not np.issubdtype(crops.dtype, np.floating):
        raise DataError(f"{source}: crops must hold pixel values 0..255 as uint8 or float, got dtype "
                        f"{crops.dtype} (convert with .astype(np.uint8))")
    if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
        raise DataError(f"{source}: crops must be (N, {size}, {size}, 3) RGB (channels last), got shape "
                        f"{crops.shape}")
    if crops.dtype != np.uint8 and not np.isfinite(crops).all():
        raise DataError(f"{source}: crops hold NaN or infinite pixel values")
    return crops


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(detail["dtype"], np.integer) and scale != 0.0:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    return x.astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(y.dtype, np.integer) and scale != 0.0:
        return (y.astype(np.float32) - zero_point) * scale
    return y.astype(np.float32)


def _named_outputs(details: list[dict], name_of) -> dict[str, dict]:
    """{output name: detail} for the named outputs present; "landmarks" falls back to the one output
    of shape (N, L, 2), or the only output."""
    found = {}
    for detail in details:
        name = name_of(detail)
        for wanted in NAMED_OUTPUTS:
            if wanted in name and wanted not in found:
                found[wanted] = detail
    if LANDMARKS_OUTPUT not in found:
        shaped = [d for d in details if len(list(d["shape"] if d["shape"] is not None else [])) == 3
                  and list(d["shape"])[-1] == 2]
        if shaped or len(details) == 1:
            found[LANDMARKS_OUTPUT] = (shaped or details)[0]
        else:
            raise DataError(f"no output named {LANDMARKS_OUTPUT!r} or of shape (1, L, 2) among "
                            f"{[name_of(d) for d in details]}")
    return found


def load_tflite(path: str, num_threads: Optional[int] = None) -> CropModel:
    """Loads a .tflite crop model with LiteRT; runs it one crop at a time."""
    try:
        interpreter = litert_interpreter(path, num_threads)
    except (ValueError, RuntimeError) as err:
        raise DataError(f"{path}: not a loadable TFLite model ({err})") from None
    (input_detail, *_) = interpreter.get_input_details()
    # Converted files name tensors after graph ops; their signature names the outputs (export/).
    signature_names = {}
    for key in interpreter.get_signature_list():
        outputs = interpreter.get_signature_runner(key).get_output_details()
        signature_names.update({detail["index"]: name for name, detail in outputs.items()})
    outputs = _named_outputs(interpreter.get_output_details(), lambda d: signature_names.get(d["index"], d["name"]))
    size = int(input_detail["shape"][1])
    num_points = int(outputs[LANDMARKS_OUTPUT]["shape"][1])

    def outputs_fn(crops: np.ndarray) -> dict:
        crops = _check_crops(crops, size, path)
        collected = {name: [] for name in outputs}
        for crop in crops:
            interpreter.set_tensor(input_detail["index"], _quantize(crop[None].astype(np.float32), input_detail))
            interpreter.invoke()
            for name, detail in outputs.items():
                collected[name].append(_dequantize(interpreter.get_tensor(detail["index"]), detail)[0])
        return {name: np.stack(values) if values else np.zeros((0, *outputs[name]["shape"][1:]), np.float32)
                for name, values in collected.items()}

    entries = tflite_metadata_entries(path)
    return CropModel(outputs_fn, size, num_points, _tflite_margin(entries),
                     _scheme(_tflite_scheme_name(entries), num_points))


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(float16)": np.float16}


def load_onnx(path: str) -> CropModel:
    """Loads an .onnx crop model with onnxruntime (CPU); batches when the batch axis is free."""
    # onnxruntime loads only for .onnx files, off the LiteRT path.
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise DataError(f"{path}: not a loadable ONNX model ({err})") from None
    input_meta = session.get_inputs()[0]
    shape = list(input_meta.shape)
    channels_first = shape[1] == 3 and shape[-1] != 3
    size = int(shape[2] if channels_first else shape[1])
    dtype = _ONNX_TYPES.get(input_meta.type, np.float32)
    outputs = _named_outputs([{"name": o.name, "shape": o.shape} for o in session.get_outputs()],
                             lambda d: d["name"])
    names = list(outputs)
    fixed_batch = isinstance(shape[0], int) and shape[0] == 1
    margin_text = session.get_modelmeta().custom_metadata_map.get(MARGIN_KEY)

    def run(batch: np.ndarray) -> dict:
        x = batch.transpose(0, 3, 1, 2) if channels_first else batch
        values = session.run([outputs[name]["name"] for name in names], {input_meta.name: x.astype(dtype)})
        return {name: np.asarray(value, np.float32) for name, value in zip(names, values)}

    out_shape = list(outputs[LANDMARKS_OUTPUT]["shape"] or [])
    if len(out_shape) == 3 and isinstance(out_shape[1], int):
        num_points = out_shape[1]
    else:  # symbolic output shape: ask the model once
        num_points = int(np.shape(run(np.zeros((1, size, size, 3), np.uint8))[LANDMARKS_OUTPUT])[1])

    def outputs_fn(crops: np.ndarray) -> dict:
        crops = _check_crops(crops, size, path)
        if not fixed_batch:
            return run(crops)
        parts = [run(crop[None]) for crop in crops]
        return {name: np.concatenate([p[name] for p in parts]) if parts else np.zeros((0,), np.float32)
                for name in names}

    margin = _parse_margin(margin_text) if margin_text is not None else None
    scheme_name = session.get_modelmeta().custom_metadata_map.get(SCHEME_KEY)
    return CropModel(outputs_fn, size, num_points, margin, _scheme(scheme_name, num_points))


def _offset(value, path: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: contract field {LANDMARK_OFFSET_KEY!r} must be two numbers [x, y], "
                        f"got {value!r}") from None
    return (x, y)


def load_runtime(path, flip_test: bool = False) -> CropModel:
    """A .tflite or .onnx crop model; with `flip_test`, each prediction averaged with its mirror's.

    The flip test needs the landmark scheme (its flip permutation): stored in the file, or
    inferred from the number of landmarks; and the landmark offset the file's outputs include
    (its contract's `landmark_offset_px`; none in files without it).
    """
    path = str(path)
    loaded = load_tflite(path) if path.lower().endswith(".tflite") else load_onnx(path)
    contract = read_contract(path)
    stored = contract.get("quality")
    if stored:
        loaded.quality = QualityModel.from_dict(stored, f"{path} (contract)")
    if loaded.margin is None:
        loaded.margin = DEFAULT_MARGIN
    if flip_test:
        if loaded.scheme is None:
            raise DataError(f"{path}: the flip test needs the landmark scheme, which the file does not "
                            f"store and its {loaded.num_points} landmarks do not identify")

        offset = contract.get(LANDMARK_OFFSET_KEY, (0.0, 0.0))
        loaded.outputs_fn = FlipAveraged(loaded.outputs_fn, loaded.scheme, loaded.input_size,
                                         _offset(offset, path))
    return loaded
