"""The exported file's contract, stored inside the file: what goes in, what comes out, how to crop.

One JSON object (`contract(model, ...)`) is written

- into a `.tflite` file as a metadata entry named `rar_keras` (the flatbuffer
  `Model.metadata` table: a name and a buffer holding UTF-8 JSON), next to the
  converter's own entries; LiteRT ignores entries it does not know;
- into an `.onnx` file as `metadata_props`: the whole JSON under `rar_keras`,
  plus its top-level scalars as their own keys (`margin`, `input_size`,
  `scheme`, ...), so that `onnxruntime`'s `custom_metadata_map` shows them.

`eval.runtimes` reads the margin from either (a TFLite entry holding a JSON
object with a "margin" key, the ONNX key "margin"); `read_metadata` gives the
whole contract back.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from datasets.schemes import get_scheme
from export.graph import INPUT_NAME, OUTPUT_NAMES, SIGNATURE_KEY
from rar_keras.inference.contract import LANDMARK_OFFSET_KEY, METADATA_NAME, read_contract

FORMAT_VERSION = 1
CROP_RULE = ("square crop centred on the face box centre, side = longer box side * (1 + margin), "
             "resized to input_size x input_size (pixel centres on integers; see "
             "datasets.geometry.crop_matrix)")
OUTPUTS = {
    "landmarks": "(N, L, 2) float32, x then y, in crop pixels",
    "visibility": "(N, L) float32, probability that each landmark is visible (below 0.5: occluded)",
    "attention": "(N, T) float32, index of the attention centre landmark at each refinement step",
    "confidence": "(N, L) float32, peak probability of each landmark's conv8 heatmap",
}


def contract(model, batch: Optional[int] = 1, quantization: str = "none", runtime: str = "",
             extra: Optional[dict] = None) -> dict:
    """The input/output contract of an exported `RARLandmarker`, as a JSON-ready dict.

    `extra` adds entries: "source" ({"preset": name, "weights_sha256": ...}: where the weights came
    from, so that a file shipped beside a preset can be checked against the preset's weights) and
    "quality" (the preset's quality model, `rar_keras.inference.quality`).
    """
    cfg = model.config
    scheme = get_scheme(cfg.scheme)
    size = int(cfg.input_size)
    return {
        "format_version": FORMAT_VERSION,
        "producer": "rar-keras export",
        "runtime": runtime,
        "quantization": quantization,
        "input_name": INPUT_NAME,
        "input_shape": [batch if batch is not None else -1, size, size, 3],
        "input_size": size,
        "input_dtype": "float32",
        "input_layout": "NHWC",
        "channel_order": "RGB",
        "value_range": [0.0, 255.0],
        "margin": float(cfg.margin),
        "crop": CROP_RULE,
        "scheme": scheme.name,
        "num_landmarks": int(scheme.num_points),
        # For a flip test on the device: landmark i of a mirrored crop is landmark flip_permutation[i].
        "flip_permutation": [int(i) for i in scheme.flip_permutation],
        # The outputs include this shift (the training annotations' convention, see RARConfig's
        # landmark_offset): a flip test mirrors back with x -> input_size - 1 - x + 2 * offset x.
        LANDMARK_OFFSET_KEY: [float(v) for v in cfg.landmark_offset_pixels],
        "steps": int(cfg.steps),
        "output_names": list(OUTPUT_NAMES),
        "outputs": OUTPUTS,
        "signature": SIGNATURE_KEY,
        **(extra or {}),
    }


# === TFLite ===
def embed_tflite(model_bytes: bytes, meta: dict) -> bytes:
    """`model_bytes` with the JSON `meta` stored as the metadata entry `rar_keras` (replacing an old one)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME]
    model.metadata = kept + [entry]
    return flatbuffer_utils.convert_object_to_bytearray(model)


def _name(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


# === ONNX ===
def embed_onnx(onnx_model, meta: dict):
    """Sets `metadata_props` on an `onnx.ModelProto` (in place; also returned)."""
    props = {METADATA_NAME: json.dumps(meta, sort_keys=True)}
    props.update({key: str(value) for key, value in meta.items() if isinstance(value, (str, int, float))})
    kept = [p for p in onnx_model.metadata_props if p.key not in props]
    del onnx_model.metadata_props[:]
    onnx_model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    return onnx_model


def read_metadata(path) -> dict:
    """The contract stored in a .tflite or .onnx file (`rar_keras.inference.contract.read_contract`)."""
    return read_contract(path)
