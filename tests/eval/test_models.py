"""Predictors of the evaluation runner: mean shape, ONNX files, model specs."""

import numpy as np
import pytest

from datasets.errors import DataError
from datasets.schemes import COFW29, W300
from eval.models import load_predictor
from eval.predictors import MeanShapePredictor
from rar_keras.inference.crop_landmarker import CropLandmarker

SIZE = 64
L = COFW29.num_points


def _images_and_boxes():
    images = [np.zeros((120, 160, 3), np.uint8), np.zeros((300, 200, 3), np.uint8)]
    boxes = np.array([[20, 30, 80, 90], [50, 60, 150, 220]], np.float32)
    return images, boxes


def test_mean_shape_is_averaged_in_the_unit_box_and_stretched_to_each_box():
    square = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], np.float32)
    a = square * 10 + 5                                   # box (5,5)-(25,25): unit shape = square / 2
    b = np.array([[0, 0], [4, 0], [0, 8], [4, 4]], np.float32)   # unit: (0,0) (1,0) (0,1) (1,.5)
    predictor = MeanShapePredictor.from_shapes([a, b])
    np.testing.assert_allclose(predictor.mean_shape_unit, [[0, 0], [1, 0], [0, 1], [1, 0.75]])
    out = predictor.predict([None], np.array([[10, 20, 30, 60]]))
    np.testing.assert_allclose(out[0], [[10, 20], [30, 20], [10, 60], [30, 50]])


def test_mean_shape_needs_faces():
    with pytest.raises(DataError):
        MeanShapePredictor.from_shapes([])


def _write_onnx(path, margin="0.4"):
    """A crop model that ignores its pixels and puts every landmark at the crop centre."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    centre = np.full((1, L, 2), (SIZE - 1) / 2.0, np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "flat"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "centre"], ["landmarks"]),
    ]
    graph = helper.make_graph(
        nodes, "centre", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", L, 2])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                     helper.make_tensor("flat", TensorProto.INT64, [3], [-1, 1, 1]),
                     onnx.numpy_helper.from_array(centre, "centre")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"margin": margin})
    onnx.save(model, str(path))


def test_onnx_model_is_wrapped_with_its_margin(tmp_path):
    path = tmp_path / "centre.onnx"
    _write_onnx(path)
    predictor = load_predictor(str(path), COFW29)
    assert isinstance(predictor, CropLandmarker)
    assert predictor.input_size == SIZE and predictor.margin == pytest.approx(0.4)
    images, boxes = _images_and_boxes()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(predictor.predict(images, boxes)[:, 0], centres, atol=1e-3)
    with pytest.raises(DataError, match="68"):
        load_predictor(str(path), W300)


@pytest.mark.parametrize("spec", ["missing.onnx", "missing.tflite", "missing.keras", "dir/model.pt"])
def test_bad_model_specs_name_the_file(spec):
    with pytest.raises(DataError, match=spec.split("/")[-1]):
        load_predictor(spec, W300)


def test_mean_shape_without_training_data_asks_for_it(tmp_path):
    with pytest.raises(DataError, match="--train-data"):
        load_predictor("mean-shape", COFW29, data_path=str(tmp_path))
