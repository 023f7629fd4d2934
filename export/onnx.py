"""ONNX conversion with tf2onnx: the same inference graph as the TFLite files, batch axis free.

`tf2onnx.convert.from_function` on `export.graph.inference_function` (opset 17).
The graph's inputs and outputs are renamed to the contract's names ("images";
"landmarks", "attention", "confidence"; tf2onnx 1.17 already uses them), and the
contract is stored in `metadata_props` (`export.metadata`). docs/TOOLCHAIN.md: every
tf2onnx route gives outputs identical to Keras; `tests/test_export.py` checks it.
"""

from __future__ import annotations

import pathlib
from typing import Optional

import onnx
import tf2onnx

from export import graph, metadata
from rar_keras.utils.atomic import write_atomically

DEFAULT_OPSET = 17


class OnnxExportError(RuntimeError):
    """tf2onnx failed on the model."""


def _rename(onnx_model, old: str, new: str) -> None:
    """Renames the value `old` to `new` everywhere in the graph."""
    if old == new:
        return
    for node in onnx_model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(onnx_model.graph.input) + list(onnx_model.graph.output):
        if value.name == old:
            value.name = new


def convert(model, batch: Optional[int] = None, opset: int = DEFAULT_OPSET, extra: Optional[dict] = None):
    """Converts a `RARLandmarker` to an `onnx.ModelProto` (metadata set, names fixed)."""
    function = graph.inference_function(model, batch)
    try:
        onnx_model, _ = tf2onnx.convert.from_function(
            function, input_signature=[graph.input_signature(model, batch)], opset=opset)
    except Exception as error:  # tf2onnx raises many internal types
        raise OnnxExportError(f"ONNX conversion failed: {error}") from error
    _rename(onnx_model, onnx_model.graph.input[0].name, graph.INPUT_NAME)
    # tf2onnx names the outputs after the dict keys; older versions used tensor names, in the
    # flattened (sorted-key) order of the dict.
    outputs = [output.name for output in onnx_model.graph.output]
    if sorted(outputs) != sorted(graph.OUTPUT_NAMES) and len(outputs) == len(graph.OUTPUT_NAMES):
        for old, new in zip(outputs, sorted(graph.OUTPUT_NAMES)):
            _rename(onnx_model, old, new)
    meta = metadata.contract(model, batch, "none", "onnx", extra)
    meta["opset"] = opset
    return metadata.embed_onnx(onnx_model, meta)


def export_onnx(model, path, batch: Optional[int] = None, opset: int = DEFAULT_OPSET,
                extra: Optional[dict] = None) -> pathlib.Path:
    """Converts and writes an .onnx file (atomically); returns its path."""
    onnx_model = convert(model, batch, opset, extra)
    path = pathlib.Path(path)
    write_atomically(path, lambda tmp: onnx.save(onnx_model, tmp))
    return path
