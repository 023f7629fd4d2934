"""Any model spec as a crop model: `model(crops (N, S, S, 3) RGB) -> (N, L, 2)` crop pixels.

`.tflite` and `.onnx` files run in LiteRT / onnxruntime, without TensorFlow. A preset runs its
shipped `model.tflite` in LiteRT by default (the fast path: no TensorFlow import), or in Keras
with `runtime="keras"` (research: every refinement stage, gradients). A `.keras` file runs in
Keras. Each crop model has `input_size`, `margin`, `scheme` and `predict(crops) -> dict`. A
preset's `model.tflite` that records other weights than the folder's `weights.npz` (the preset was
retrained and not exported again) is never run: "auto" falls back to Keras with a warning.
"""

from __future__ import annotations

import pathlib
import warnings

from datasets.errors import DataError
from rar_keras.inference.contract import read_contract
from rar_keras.inference.keras_model import KerasCropModel, load_model
from rar_keras.inference.model_spec import PRESET, TFLITE, resolve_model_spec
from rar_keras.inference.quality import read_quality
from rar_keras.inference.runtimes import load_runtime
from rar_keras.presets.loader import CONFIG_FILE, TFLITE_FILE, WEIGHTS_FILE, config_digest, weights_digest

RUNTIMES = ("auto", "litert", "keras")


def uses_keras(spec, runtime: str = "auto") -> bool:
    """Whether `load_crop_model(spec, runtime=runtime)` builds a Keras model (loads TensorFlow)."""
    resolved = resolve_model_spec(spec)
    if resolved.kind == PRESET:
        return runtime == "keras" or not current_litert_file(resolved.path)
    return resolved.is_keras


def current_litert_file(folder) -> bool:
    """Whether a preset folder holds a `model.tflite` exported from the weights and config it holds now.

    The export records the SHA-256 of the preset's weights and of its config in the file's contract;
    a digest the file does not record is not checked (a file exported from a .keras file and copied
    in records neither).
    """
    shipped = pathlib.Path(folder) / TFLITE_FILE
    if not shipped.is_file():
        return False
    source = read_contract(shipped).get("source", {})
    weights, config = source.get("weights_sha256"), source.get("config_sha256")
    return ((weights is None or weights == weights_digest(folder))
            and (config is None or config == config_digest(folder)))


def load_crop_model(spec, batch_size: int = 32, flip_test: bool = False, argument: str = "model",
                    runtime: str = "auto"):
    """The crop model a spec names (see `rar_keras.inference.model_spec`).

    Args:
        spec: a preset name or folder, or a .keras / .tflite / .onnx file.
        batch_size: crops per Keras forward pass.
        flip_test: average each prediction with the one on the mirrored crop (twice the compute).
        argument: the option named in errors.
        runtime: for a preset, "auto" / "litert" (its `model.tflite`) or "keras".
    """
    if runtime not in RUNTIMES:
        raise DataError(f"runtime {runtime!r}: expected one of {RUNTIMES}")
    resolved = resolve_model_spec(spec, argument=argument)
    quality = read_quality(resolved.path) if resolved.kind == PRESET else None
    if resolved.kind == PRESET and runtime != "keras":
        shipped = resolved.path / TFLITE_FILE
        if current_litert_file(resolved.path):
            return _with_quality(load_runtime(shipped, flip_test=flip_test), quality)
        if shipped.is_file():
            stale = (f"{shipped} was exported from other weights or settings than {resolved.path / WEIGHTS_FILE} "
                     f"and {resolved.path / CONFIG_FILE} (export it again: python -m export --model "
                     f"{resolved.path} --format tflite --out {shipped})")
            if runtime == "litert":
                raise DataError(f"{argument} {spec}: {stale}")
            warnings.warn(f"{stale}; running the preset in Keras", stacklevel=2)
        elif runtime == "litert":
            raise DataError(f"{argument} {spec}: the preset has no {TFLITE_FILE} (make it with python -m export; "
                            "see docs/PRESETS.md) - use runtime 'keras'")
    if resolved.is_keras:
        if runtime == "litert":
            raise DataError(f"{argument} {spec}: runtime 'litert' needs a preset with {TFLITE_FILE} or a "
                            ".tflite file")
        model = KerasCropModel(load_model(resolved.text, argument), batch_size=batch_size, flip_test=flip_test)
        return _with_quality(model, quality)
    if runtime == "keras":
        raise DataError(f"{argument} {spec}: runtime 'keras' needs a preset or a .keras file, not a "
                        f".{'tflite' if resolved.kind == TFLITE else 'onnx'} file")
    return load_runtime(resolved.path, flip_test=flip_test)


def _with_quality(crop_model, quality):
    """The crop model with the preset's quality model, when it has one (else the file's own, if any)."""
    if quality is not None:
        crop_model.quality = quality
    return crop_model
