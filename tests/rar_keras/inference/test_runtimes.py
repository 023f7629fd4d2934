"""The LiteRT / ONNX wrappers of eval.runtimes reject crops of the wrong shape or pixel type clearly.

The models are tiny stand-ins built here (not exported RAR models): crops (N, 32, 32, 3)
float32 in, the first 2 x 68 pixel values out as "landmarks" (N, 68, 2).
"""

from __future__ import annotations

import numpy as np
import pytest

from datasets.errors import DataError

SIZE = 32
POINTS = 68


def expected(crops: np.ndarray) -> np.ndarray:
    return crops.reshape(len(crops), -1)[:, :POINTS * 2].reshape(-1, POINTS, 2).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> str:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Reshape", ["crops", "flat_shape"], ["flat"]),
             helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["head"]),
             helper.make_node("Reshape", ["head", "points_shape"], ["landmarks"])]
    constants = [helper.make_tensor("flat_shape", TensorProto.INT64, [2], [0, -1]),
                 helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
                 helper.make_tensor("ends", TensorProto.INT64, [1], [POINTS * 2]),
                 helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
                 helper.make_tensor("points_shape", TensorProto.INT64, [3], [-1, POINTS, 2])]
    graph = helper.make_graph(nodes, "stand_in", [helper.make_tensor_value_info(
        "crops", TensorProto.FLOAT, ["N", SIZE, SIZE, 3])], [helper.make_tensor_value_info(
            "landmarks", TensorProto.FLOAT, ["N", POINTS, 2])], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "stand_in.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory) -> str:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="crops")])
    def stand_in(crops):
        return {"landmarks": tf.reshape(tf.reshape(crops, [1, -1])[:, :POINTS * 2], [1, POINTS, 2])}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([stand_in.get_concrete_function()], stand_in)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = tmp_path_factory.mktemp("tflite") / "stand_in.tflite"
    path.write_bytes(converter.convert())
    return str(path)


@pytest.fixture(params=["onnx", "tflite"])
def loaded(request, onnx_file, tflite_file):
    from rar_keras.inference import runtimes

    if request.param == "onnx":
        return runtimes.load_onnx(onnx_file), onnx_file
    return runtimes.load_tflite(tflite_file), tflite_file


def test_right_input_runs(loaded):
    model, _ = loaded
    assert (model.input_size, model.num_points) == (SIZE, POINTS)
    crops = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    np.testing.assert_allclose(model(crops), expected(crops), atol=1e-4)
    np.testing.assert_allclose(model(crops.astype(np.float32)), expected(crops), atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 16, 16, 3), (SIZE, SIZE, 3), (2, 3, SIZE, SIZE), (2, SIZE, SIZE, 4),
                                   (2, SIZE, SIZE)], ids=str)
def test_wrong_shape_is_refused(loaded, shape):
    model, path = loaded
    with pytest.raises(DataError) as info:
        model(np.zeros(shape, np.uint8))
    message = str(info.value)
    assert path in message and f"(N, {SIZE}, {SIZE}, 3)" in message and str(shape) in message


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex64, object, np.str_], ids=str)
def test_wrong_dtype_is_refused(loaded, dtype):
    model, path = loaded
    with pytest.raises(DataError) as info:
        model(np.zeros((1, SIZE, SIZE, 3), dtype))
    assert path in str(info.value) and "uint8 or float" in str(info.value)


def test_non_finite_pixels_are_refused(loaded):
    model, path = loaded
    crops = np.zeros((1, SIZE, SIZE, 3), np.float32)
    crops[0, 3, 4, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        model(crops)
