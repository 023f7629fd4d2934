"""The exportable inference graph: one float32 RGB 0..255 crop batch in, three named outputs out.

`inference_function(model, batch)` wraps a `RARLandmarker` in a `tf.function`
with a fixed input signature (normalisation stays inside the model's `call`),
`training=False`, and only the outputs a deployed model needs:

    "landmarks"  (N, L, 2) float32  final shape (S_T, or its shape posterior) in crop pixels
    "visibility" (N, L)    float32  probability that each landmark is visible (not occluded)
    "attention"  (N, T)    float32  attention centre (landmark index) at each step
    "confidence" (N, L)    float32  conv8 peak probability of each landmark

`attention` is cast to float32 so that every output quantizes/dequantizes the
same way in every runtime (an int32 output is fine in LiteRT and ONNX, but
float keeps int8 conversion free of mixed-type outputs).

`save_inference_graph` writes it as a SavedModel with a Keras `ExportArchive`
(the route docs/TOOLCHAIN.md gives for TFLite: `from_saved_model` on it).
"""

from __future__ import annotations

import pathlib
from typing import Optional

import keras
import tensorflow as tf

INPUT_NAME = "images"
OUTPUT_NAMES = ("landmarks", "visibility", "attention", "confidence")
SIGNATURE_KEY = "serving_default"


def input_signature(model, batch: Optional[int] = 1) -> tf.TensorSpec:
    """The one input: (batch, S, S, 3) float32 RGB 0..255; `batch=None` leaves the batch axis free."""
    size = int(model.config.input_size)
    return tf.TensorSpec([batch, size, size, 3], tf.float32, name=INPUT_NAME)


def _outputs(model, images) -> dict:
    out = model(images, training=False)
    return {"landmarks": tf.identity(out["landmarks"], name="landmarks"),
            "visibility": tf.identity(out["visibility"], name="visibility"),
            "attention": tf.cast(out["attention"], tf.float32, name="attention"),
            "confidence": tf.identity(out["confidence"], name="confidence")}


def inference_function(model, batch: Optional[int] = 1):
    """A concrete-signature `tf.function` images -> {"landmarks", "visibility", "attention", "confidence"}."""

    @tf.function(input_signature=[input_signature(model, batch)], autograph=False)
    def serve(images):
        return _outputs(model, images)

    return serve


def save_inference_graph(model, path, batch: Optional[int] = 1) -> pathlib.Path:
    """Writes the inference graph as a SavedModel (signature "serving_default") at `path`."""
    path = pathlib.Path(path)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE_KEY, fn=lambda images: _outputs(model, images),
                         input_signature=[input_signature(model, batch)])
    archive.write_out(str(path), verbose=False)
    return path


def keras_reference(model, crops) -> dict:
    """The Keras model's own outputs on crops, as NumPy (what every exported file must reproduce)."""
    out = _outputs(model, tf.convert_to_tensor(crops, tf.float32))
    return {name: value.numpy() for name, value in out.items()}
