"""The contract an exported `.tflite` / `.onnx` file carries (written by `export.metadata`), read back
without TensorFlow: a JSON object under the metadata name `rar_keras`.

In a `.tflite` file it is a flatbuffer metadata entry; in an `.onnx` file a `metadata_props` entry
(whose top-level scalars also have keys of their own, such as `margin`).
"""

from __future__ import annotations

import json
import pathlib

from ai_edge_litert import schema_py_generated as schema

METADATA_NAME = "rar_keras"
# The landmark offset (x, y) in crop pixels that the file's outputs include (the model's
# `landmark_offset`): a flip test on the device mirrors back with x -> S - 1 - x + 2 * offset_x.
LANDMARK_OFFSET_KEY = "landmark_offset_px"


def tflite_metadata_entries(path) -> list[tuple[str, bytes]]:
    """(name, content) of every metadata entry of a .tflite file."""
    raw = pathlib.Path(path).read_bytes()
    model = schema.Model.GetRootAs(raw, 0)
    entries = []
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength() > 0:
            data = buffer.DataAsNumpy().tobytes()
        elif buffer.Offset() > 1:      # large models keep buffers after the flatbuffer
            data = raw[buffer.Offset():buffer.Offset() + buffer.Size()]
        else:
            continue
        entries.append(((entry.Name() or b"").decode("utf-8", "replace"), data))
    return entries


def read_tflite_contract(path) -> dict:
    """The `rar_keras` JSON entry of a .tflite file ({} when there is none)."""
    for name, data in tflite_metadata_entries(path):
        if name == METADATA_NAME:
            return json.loads(data.decode("utf-8"))
    return {}


def read_onnx_contract(path) -> dict:
    """The `rar_keras` JSON of an .onnx file ({} when there is none), read with onnxruntime."""
    # onnxruntime loads only for .onnx files, off the LiteRT path.
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_NAME)
    return json.loads(text) if text else {}


def read_contract(path) -> dict:
    """The contract stored in a .tflite or .onnx file ({} when there is none)."""
    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".tflite":
        return read_tflite_contract(path)
    if suffix == ".onnx":
        return read_onnx_contract(path)
    raise ValueError(f"{path}: expected a .tflite or .onnx file")
