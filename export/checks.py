"""Checks on exported files: the ops a .tflite file needs, and parity of any file with the Keras model.

`tflite_ops` reads the operator codes straight from the flatbuffer (no
interpreter, so no delegate hides or renames anything); `check_builtin_only`
fails on a Flex (Select TF) op, a custom op or a WHILE loop, none of which the
plain LiteRT runtime on a phone runs. `run_tflite` / `run_onnx` run a file on
crops and return its named outputs; `parity` compares them with the Keras
model's in crop pixels, and in NME (inter-pupil) against the Keras landmarks.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Union

import numpy as np
import onnxruntime as ort
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from eval.metrics import nme, normalizer
from export.graph import OUTPUT_NAMES, SIGNATURE_KEY
from rar_keras.utils.quiet import cpp_notes_held_back

FORBIDDEN_BUILTINS = ("WHILE", "CALL_ONCE", "IF")
FLEX_PREFIX = "Flex"

ModelSource = Union[str, pathlib.Path, bytes]


class ExportCheckError(RuntimeError):
    """An exported file needs ops the builtin LiteRT runtime does not have, or disagrees with Keras."""


def _raw(source: ModelSource) -> bytes:
    return bytes(source) if isinstance(source, (bytes, bytearray)) else pathlib.Path(source).read_bytes()


def tflite_ops(source: ModelSource) -> list[str]:
    """Names of the operators used by a .tflite model (builtins by name, custom ops by their code)."""
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    model = schema.Model.GetRootAs(_raw(source), 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append((code.CustomCode() or b"?").decode("utf-8", "replace"))
        else:
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    used = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            used.append(codes[subgraph.Operators(o).OpcodeIndex()])
    return sorted(set(used))


def forbidden_ops(ops: list[str]) -> list[str]:
    """The ops among `ops` that plain LiteRT cannot run: Flex/custom ops (not upper-case builtins), loops."""
    return [op for op in ops if op.startswith(FLEX_PREFIX) or op in FORBIDDEN_BUILTINS or not op.isupper()]


def check_builtin_only(source: ModelSource) -> list[str]:
    """Returns the op list; raises ExportCheckError when a Flex/Select-TF, custom or WHILE op is present."""
    ops = tflite_ops(source)
    bad = forbidden_ops(ops)
    if bad:
        raise ExportCheckError(f"the TFLite model needs ops outside the builtin set: {bad} "
                               f"(all ops: {ops})")
    return ops


# === Running exported files ===
def tflite_runner(source: ModelSource, num_threads: Optional[int] = None):
    """A function crops (N, S, S, 3) float32 -> {output name: array}, as many crops per invoke as the
    file's fixed batch (one for a file with a free batch axis); N must be a multiple of it."""
    if isinstance(source, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(source), num_threads=num_threads)
    else:
        interpreter = Interpreter(model_path=str(source), num_threads=num_threads)
    with cpp_notes_held_back():      # LiteRT's note on the XNNPACK delegate it creates
        interpreter.allocate_tensors()
        runner = interpreter.get_signature_runner(SIGNATURE_KEY)
    ((input_name, detail),) = runner.get_input_details().items()
    batch = file_batch(detail.get("shape_signature", detail["shape"])) or 1

    return lambda crops: _in_chunks(lambda chunk: runner(**{input_name: chunk}), crops, batch)


def file_batch(shape) -> Optional[int]:
    """The fixed batch of an input shape (its first axis), or None for a free batch axis."""
    first = shape[0]
    return int(first) if isinstance(first, (int, np.integer)) and int(first) > 0 else None


def _in_chunks(call, crops, step: int) -> dict:
    """`call` ({chunk} -> {output name: array}) on consecutive chunks of `step` crops, the outputs
    concatenated; the number of crops must be a multiple of `step`."""
    crops = np.asarray(crops, np.float32)
    if len(crops) % step:
        raise ExportCheckError(f"the file takes {step} crops per call: give a multiple of {step} crops, "
                               f"got {len(crops)}")
    parts = [call(crops[i:i + step]) for i in range(0, len(crops), step)]
    return {name: np.concatenate([p[name] for p in parts]).astype(np.float32) for name in parts[0]}


def run_tflite(source: ModelSource, crops, num_threads: Optional[int] = None) -> dict:
    return tflite_runner(source, num_threads)(np.asarray(crops, np.float32))


def onnx_runner(path, num_threads: Optional[int] = None):
    """A function crops (N, S, S, 3) float32 -> {output name: array} (the whole batch at once)."""
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    batch = file_batch(session.get_inputs()[0].shape)
    names = [o.name for o in session.get_outputs()]

    def call(chunk: np.ndarray) -> dict:
        return dict(zip(names, session.run(names, {input_name: chunk})))

    return lambda crops: _in_chunks(call, crops, batch or max(len(crops), 1))


def run_onnx(path, crops, num_threads: Optional[int] = None) -> dict:
    return onnx_runner(path, num_threads)(crops)


def run_file(path, crops, num_threads: Optional[int] = None) -> dict:
    path = str(path)
    if path.endswith(".tflite"):
        return run_tflite(path, crops, num_threads)
    return run_onnx(path, crops, num_threads)


# === Parity ===
def parity(reference: dict, outputs: dict, scheme=None) -> dict:
    """Differences between a file's outputs and the Keras reference (both from `graph.keras_reference`).

    Returns max/mean absolute landmark differences in crop pixels, the share of
    faces whose attention centres differ, and (with a scheme) the NME (ip, %) of
    the file's landmarks measured against the Keras landmarks.
    """
    missing = [name for name in OUTPUT_NAMES if name not in outputs]
    if missing:
        raise ExportCheckError(f"exported outputs lack {missing}; got {sorted(outputs)}")
    diff = np.abs(outputs["landmarks"] - reference["landmarks"])
    result = {"max_px": float(diff.max()), "mean_px": float(diff.mean()),
              "attention_changed": float(np.mean(np.any(outputs["attention"] != reference["attention"], -1))),
              "confidence_max": float(np.abs(outputs["confidence"] - reference["confidence"]).max()),
              "visibility_max": float(np.abs(outputs["visibility"] - reference["visibility"]).max())}
    if scheme is not None:
        errors = nme_ip(outputs["landmarks"], reference["landmarks"], scheme)
        result["nme_ip_vs_keras"] = float(100 * errors.mean())
    return result


def nme_ip(pred, gt, scheme) -> np.ndarray:
    """Per-face NME (fraction) normalised by the inter-pupil distance of `gt` (eval.metrics)."""
    return nme(pred, gt, normalizer(gt, scheme, "ip"))
