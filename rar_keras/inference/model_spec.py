"""What a `--model` argument names, decided without TensorFlow: the one resolver every command uses.

A spec is a shipped preset name, a preset folder, or a `.keras`, `.tflite` or `.onnx` file.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

from datasets.errors import DataError
from rar_keras.presets.loader import is_preset_folder, list_presets, preset_folder

PRESET, KERAS, TFLITE, ONNX = "preset", "keras", "tflite", "onnx"
KINDS = (PRESET, KERAS, TFLITE, ONNX)
SUFFIXES = {".keras": KERAS, ".tflite": TFLITE, ".onnx": ONNX}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A resolved model spec.

    Args:
        text: the spec as given.
        kind: "preset" (a shipped name or a preset folder), "keras", "tflite" or "onnx".
        path: the preset folder or the model file.
    """

    text: str
    kind: str
    path: pathlib.Path

    @property
    def is_keras(self) -> bool:
        """Whether loading it builds a Keras model (a preset or a .keras file)."""
        return self.kind in (PRESET, KERAS)


def resolve_model_spec(spec, kinds: tuple[str, ...] = KINDS, argument: str = "model") -> ModelSpec:
    """Resolves `spec`, or raises a DataError naming it, what exists and what `kinds` are accepted.

    Args:
        spec: a preset name, a preset folder, or a model file path.
        kinds: the kinds the caller accepts.
        argument: the option named in errors (e.g. "--init-from").
    """
    text = os.fspath(spec)
    path = pathlib.Path(text)
    shipped = ", ".join(list_presets()) or "none"
    accepted = " or ".join(_describe(kind) for kind in kinds)
    if text in list_presets() or is_preset_folder(path):
        resolved = ModelSpec(text, PRESET, preset_folder(text))
    elif path.suffix.lower() in SUFFIXES:
        if not path.is_file():
            raise DataError(f"{argument} {text}: no such file (expected {accepted}; shipped presets: {shipped})")
        resolved = ModelSpec(text, SUFFIXES[path.suffix.lower()], path)
    else:
        raise DataError(f"{argument} {text!r}: not a shipped preset, a preset folder nor a model file "
                        f"(expected {accepted}; shipped presets: {shipped})")
    if resolved.kind not in kinds:
        raise DataError(f"{argument} {text}: a {_describe(resolved.kind)} is not accepted here "
                        f"(expected {accepted})")
    return resolved


def _describe(kind: str) -> str:
    return "a preset (name or folder)" if kind == PRESET else f"a .{kind} file"
