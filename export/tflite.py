"""LiteRT (.tflite) conversion: fp32, fp16, dynamic-range and int8, builtin ops only, one file each.

Route (docs/TOOLCHAIN.md): the inference graph (`export.graph`) is written as a
SavedModel by a Keras `ExportArchive`, then `TFLiteConverter.from_saved_model`
with `supported_ops=[TFLITE_BUILTINS]` set explicitly, so a Flex op fails the
conversion instead of slipping in. Every file is then checked for Flex, custom
and WHILE ops, and gets the contract JSON (`export.metadata`).

Modes:
    none     float32.
    fp16     weights stored as float16, computed in float32.
    dynamic  weights int8, activations float (dynamic-range quantization).
    int8     post-training int8 from calibration crops (batch 1, real faces);
             float input/output. Scheme chosen by measurement, see below.

int8 scheme. The conversion calibrates once (`_experimental_calibrate_only`,
as `tf.lite.experimental.QuantizationDebugger` does), then quantizes with a
denylist of graph nodes that stay float (`mlir_quantize(...,
denylisted_nodes=...)`, what the debugger's `get_nondebug_quantized_model`
runs). Nodes are picked by the Keras layer path in their tensor names. Float
input and output, one file, builtin ops only. Candidates (`INT8_SCHEMES`):

    full       every op with an int8 kernel in int8: CNN, heatmap decode,
               shape-bank RANSAC, SIP, LSTMs, updates.
    cnn        the backbone in int8; the whole head (decode, bank, SIP,
               attention, LSTMs, updates) in float.
    cnn_heads  as `cnn`, and the backbone's outputs (conv8 logits, SIP
               features) in float too.
    cnn_dense  as `cnn`, but the head's learned matrix products
               (FULLY_CONNECTED: LSTM kernels, projections, read-outs) in int8
               too; the geometric arithmetic (softmax/argmax decode, the
               robust shape-model fit with its basis products, similarity
               fits, SIP sample positions and gathers, attention argmax,
               gamma, shape updates) in float, the global soft-argmax's
               product with the cell grid included.

In every scheme but `full`, the backbone's half-resolution front stays float as well: the input
normalisation, the stem convolution and the first encoder stage, which the backbones run in the
name scope `rar_keras.backbones.decoder.FRONT_SCOPE` (the refiner reads that stage's output in
float anyway). In this project's timing runs (x86 with AVX-512 VNNI, XNNPACK, one thread) LiteRT
ran that front faster in float than in int8: `w300_mobile`'s `cnn_dense` file takes 1.61x
MediaPipe's time against 1.75x with the front in int8 (one run of 30 alternating blocks), and comes
closer to Keras (0.396 against 0.409 % NME). Keeping further stages or the decoder float made the
file slower. `float_front=False` quantizes the front too. The contract's `quantization` field
names the scheme and, when a front was kept float, ends in `_float_front` (a backbone without a
`front` scope, such as VGG19's, has none).

What stays float is set twice: by the denylist, and by removing the calibration
statistics of every tensor that no int8 op reads or writes. The quantizer lets
shape ops (RESHAPE, STRIDED_SLICE) take a neighbour's scale and quantizes some
of them despite the denylist, which costs geometric tensors (sample positions)
their sub-cell precision; without statistics those tensors stay float.
Same-scale ops on the output of an int8 matrix product (an LSTM's gate SPLIT)
and the fixed-range output of LOGISTIC may still be int8;
`tests/export/test_export.py` checks what reads int8 in the file.

Why `cnn_dense` is the default: full int8 loses accuracy in the geometry (with the
local argmax decode and the shape-bank choice, hundreds of % NME; `w300_fast`, global
decode and start `S_d`: 1.59 % NME against its Keras landmarks, where `cnn_dense` gives
0.41 %); keeping the head in float costs nothing in accuracy; quantizing the head's matrix products as well keeps that accuracy at a
fraction of the size (the LSTM input kernels hold most of the head's weights) and
runs fastest. `python -m export.benchmark` measures every variant of a model.
"""

from __future__ import annotations

import pathlib
import re
import tempfile
from typing import Callable, Iterable, Optional

import flatbuffers
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from tensorflow.lite.python import convert as tf_convert

from export import checks, graph, metadata
from rar_keras.backbones.decoder import FRONT_SCOPE
from rar_keras.utils.atomic import write_bytes_atomically
from rar_keras.utils.quiet import cpp_notes_held_back

QUANTIZE_MODES = ("none", "fp16", "dynamic", "int8")
INT8_SCHEMES = ("full", "cnn", "cnn_heads", "cnn_dense")
DEFAULT_INT8_SCHEME = "cnn_dense"
# Backbone attributes kept in float by "cnn_heads": the conv8 heatmap logits and the SIP features.
BACKBONE_OUTPUT_LAYERS = ("heatmap_head", "refine")
# "cnn_dense" also quantizes the head's matrix products (LSTM kernels, projections, read-outs).
DENSE_OP = "FULLY_CONNECTED"


class ConversionError(RuntimeError):
    """The converter failed, or produced a file that needs ops outside LiteRT's builtin set."""


def representative_dataset(crops: Iterable[np.ndarray]) -> Callable[[], Iterable[list]]:
    """A calibration generator factory: each crop (S, S, 3) RGB 0..255 as a batch of one, float32."""
    crops = [np.asarray(c, np.float32) for c in crops]
    if not crops:
        raise ValueError("int8 calibration needs at least one face crop")

    def generate():
        for crop in crops:
            yield [crop[None]]

    return generate


def _converter(saved_model_dir):
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                         signature_keys=[graph.SIGNATURE_KEY])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def _nodes(model_bytes: bytes) -> list[tuple[str, str]]:
    """(op name, output tensor name) of every op output of a (calibrated, still float) .tflite model."""
    model = schema.Model.GetRootAs(model_bytes, 0)
    op_names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        codes.append(op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    nodes = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            for i in range(op.OutputsLength()):
                nodes.append((codes[op.OpcodeIndex()],
                              subgraph.Tensors(op.Outputs(i)).Name().decode("utf-8", "replace")))
    return nodes


def _scope(name: str) -> "re.Pattern":
    # Keras 3 suffixes name scopes inside a traced function ("conv8" -> "conv8_1").
    return re.compile(rf"(^|/){re.escape(name)}(_\d+)?/")


def front_nodes(nodes: list[tuple[str, str]], backbone) -> list[str]:
    """The output names of the nodes in the backbone's half-resolution front (its `FRONT_SCOPE`
    name scope; none for a backbone without one)."""
    front = re.compile(_scope(backbone.name).pattern + re.escape(FRONT_SCOPE) + "/")
    return [name for _, name in nodes if front.search(name)]


def float_nodes(nodes: list[tuple[str, str]], backbone, scheme: str, geometry=(),
                float_front: bool = True) -> list[str]:
    """The nodes an int8 `scheme` keeps in float (see the module docstring).

    `nodes` are (op name, output tensor name) of the calibrated model; tensor
    names carry the Keras layer path ("rar_landmarker_1/mobile_backbone_1/conv8_1/...").
    `geometry` are layers whose matrix products are geometry, not learned read-outs
    (the robust start's shape-basis products, the global soft-argmax's product with the cell
    grid, the shape posterior's products with the prior's eigenvectors): "cnn_dense" keeps them
    float too. `float_front` keeps the backbone's half-resolution
    front (its `FRONT_SCOPE` name scope) float, except in "full".
    """
    if scheme not in INT8_SCHEMES:
        raise ValueError(f"int8 scheme must be one of {INT8_SCHEMES}, got {scheme!r}")
    if scheme == "full":
        return []
    inside = _scope(backbone.name)
    geometric = [_scope(layer.name) for layer in geometry]

    def dense_in_int8(op, name):
        return scheme == "cnn_dense" and op == DENSE_OP and not any(p.search(name) for p in geometric)

    denied = [name for op, name in nodes if not inside.search(name) and not dense_in_int8(op, name)]
    if float_front:
        denied += front_nodes(nodes, backbone)
    if scheme == "cnn_heads":
        owner = getattr(backbone, "decoder", backbone)    # the layers sit in the shared decoder
        outputs = [_scope(getattr(owner, attr).name) for attr in BACKBONE_OUTPUT_LAYERS
                   if getattr(owner, attr, None) is not None]
        denied += [name for _, name in nodes if any(p.search(name) for p in outputs)]
    return sorted(set(denied))


def strip_float_statistics(model_bytes: bytes, denied: set) -> bytes:
    """Removes the calibration min/max of every tensor that only float ops touch.

    Args:
        model_bytes: a calibrated (still float) .tflite model.
        denied: output tensor names of the ops that stay float; an op with any output
            outside it is an int8 op, whose inputs and outputs keep their statistics.

    Returns:
        The model bytes, ready for `mlir_quantize`.
    """
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    for subgraph in model.subgraphs:
        int8_tensors = set()
        for op in subgraph.operators:
            outputs = [subgraph.tensors[i].name.decode("utf-8", "replace") for i in op.outputs]
            if not all(name in denied for name in outputs):
                int8_tensors.update(i for i in op.inputs if i >= 0)
                int8_tensors.update(op.outputs)
        for index, tensor in enumerate(subgraph.tensors):
            if index not in int8_tensors and tensor.quantization is not None \
                    and tensor.quantization.min is not None:
                tensor.quantization = None
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _int8(converter, calibration, model, scheme: str, float_front: bool = True) -> tuple[bytes, bool]:
    """(the int8 model's bytes, whether a half-resolution front was found and kept float)."""
    backbone = model.backbone
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # pylint: disable=protected-access
    calibrated = converter.convert()
    nodes = _nodes(calibrated)
    if scheme != "full" and not any(_scope(backbone.name).search(name) for _, name in nodes):
        raise ConversionError(f"int8 {scheme}: no graph node carries the backbone's name "
                              f"{backbone.name!r}, so the CNN cannot be told from the head")
    geometry = [layer for layer in (model.initializer, model.decoder, model.shape_posterior) if layer is not None]
    denied = float_nodes(nodes, backbone, scheme, geometry=geometry, float_front=float_front)
    front_kept = bool(set(front_nodes(nodes, backbone)) & set(denied))
    if denied:
        calibrated = strip_float_statistics(calibrated, set(denied))
    with cpp_notes_held_back():      # the quantizer logs its settings from C++
        content = tf_convert.mlir_quantize(calibrated, disable_per_channel=False, fully_quantize=False,
                                           denylisted_nodes=denied or None)
    return content, front_kept


def convert(model, quantize: str = "none", calibration: Optional[Callable] = None, batch: Optional[int] = 1,
            int8_scheme: str = DEFAULT_INT8_SCHEME, workdir=None, extra: Optional[dict] = None,
            float_front: bool = True) -> bytes:
    """Converts a `RARLandmarker` to .tflite bytes (metadata embedded, op set checked).

    Args:
        model: the Keras model.
        quantize: one of QUANTIZE_MODES.
        calibration: for "int8", a generator factory (see `representative_dataset`).
        batch: the fixed batch size of the input (1 for phones; None = free).
        int8_scheme: one of INT8_SCHEMES.
        workdir: where to write the intermediate SavedModel (default: a temporary folder).
        extra: entries added to the contract (`export.metadata.contract`).
        float_front: int8 (schemes but "full"): keep the backbone's half-resolution front float.

    Raises:
        ValueError: unknown mode, or int8 without calibration data.
        ConversionError: the converter failed, or the file needs non-builtin ops.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    if quantize == "int8" and calibration is None:
        raise ValueError("int8 needs calibration data (face crops at the model's input size)")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        saved = graph.save_inference_graph(model, pathlib.Path(tmp) / "saved_model", batch=batch)
        converter = _converter(saved)
        try:
            if quantize == "fp16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            elif quantize == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quantize == "int8":
                content, front_kept = _int8(converter, calibration, model, int8_scheme, float_front)
            if quantize != "int8":
                content = converter.convert()
        except Exception as error:  # the converter raises several internal types
            raise ConversionError(f"TFLite conversion ({quantize}) failed: {error}") from error
    try:
        checks.check_builtin_only(content)
    except checks.ExportCheckError as error:
        raise ConversionError(str(error)) from None
    label = quantize
    if quantize == "int8":
        label = f"int8_{int8_scheme}" + ("_float_front" if front_kept else "")
    return metadata.embed_tflite(content, metadata.contract(model, batch, label, "litert", extra))


def export_tflite(model, path, quantize: str = "none", calibration: Optional[Callable] = None,
                  batch: Optional[int] = 1, int8_scheme: str = DEFAULT_INT8_SCHEME,
                  extra: Optional[dict] = None, float_front: bool = True) -> pathlib.Path:
    """Converts and writes a .tflite file (atomically); returns its path (arguments as `convert`'s)."""
    content = convert(model, quantize, calibration, batch, int8_scheme, extra=extra, float_front=float_front)
    path = pathlib.Path(path)
    write_bytes_atomically(path, content)
    return path
