"""The layer profiler: op names to layers, cuts, truncated files that compute what the whole file
computes up to the cut, and the command on a real file."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export import profile


def test_op_layers_take_the_scope_below_the_model_and_unscoped_ops_join_the_op_before():
    names = ["serving_default_x:0", "model_1/first_1/MatMul", "model_1/first_1/add;model_1/first_1/b",
             "tfl.quantize", "model_1/second_3/Relu", "model_1/second_3/inner_2/Mul"]
    assert profile.op_layers(names) == ["(input)", "first", "first", "first", "second", "second"]
    assert profile.op_layers(names, depth=2)[-1] == "second/inner"


def test_cuts_follow_each_layers_last_op():
    layers = ["(input)", "a", "b", "a", "b", "b", "c"]      # a converter may interleave two layers
    assert profile.layer_cuts(layers) == [("(input)", 1), ("a", 4), ("b", 6), ("c", 7)]


@pytest.fixture(scope="module")
def two_layer_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), batch_size=1)
    hidden = keras.layers.Dense(32, activation="relu", name="first")(inputs)
    outputs = keras.layers.Dense(8, activation="tanh", name="second")(hidden)
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("profile") / "two_layers.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_truncated_file_outputs_the_tensor_of_its_last_op(two_layer_file):
    content = two_layer_file.read_bytes()
    full = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    x = np.random.default_rng(0).normal(size=(1, 16)).astype(np.float32)
    full.set_tensor(full.get_input_details()[0]["index"], x)
    full.invoke()
    ops = full._get_ops_details()
    for keep in range(1, len(profile.op_output_names(content)) + 1):
        cut = Interpreter(model_content=profile.truncated_model(content, keep))
        cut.allocate_tensors()
        cut.set_tensor(cut.get_input_details()[0]["index"], x)
        cut.invoke()
        expected = full.get_tensor(ops[keep - 1]["outputs"][0])
        np.testing.assert_allclose(cut.get_tensor(cut.get_output_details()[0]["index"]), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="keep must be between 1 and"):
        profile.truncated_model(content, 0)


def test_profile_times_every_layer_and_the_segments_add_up(two_layer_file):
    seen = []

    def progress(items, **kwargs):
        seen.append(kwargs["unit"])
        return items

    result = profile.profile(two_layer_file, reference=two_layer_file, blocks=2, runs=3, progress=progress)
    assert seen == ["block"]                  # the alternating blocks run under the progress bar
    layers = [segment["layer"] for segment in result["segments"]]
    assert layers.index("first") < layers.index("second")
    content = two_layer_file.read_bytes()
    assert sum(segment["ops"] for segment in result["segments"]) == len(profile.op_output_names(content))
    assert sum(segment["ms"] for segment in result["segments"]) == pytest.approx(result["total_ms"])
    assert result["total_ms"] > 0 and result["reference_ms"] > 0
    table = profile.format_profile(result)
    assert "| second |" in table and "cumulative / reference" in table


def test_command_prints_the_table_and_refuses_what_is_not_a_tflite_file(two_layer_file, tmp_path, capsys):
    assert profile.main([str(two_layer_file), str(two_layer_file), "--reference", str(two_layer_file),
                         "--blocks", "1", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("| first |") == 2 and out.count("| second |") == 2 and "x the reference" in out
    assert out.startswith("CPU: ") and "int8 dot product:" in out.splitlines()[0]
    assert profile.main([str(tmp_path / "missing.tflite")]) == 2
    assert "expected an existing .tflite file" in capsys.readouterr().err
    not_a_model = tmp_path / "text.tflite"
    not_a_model.write_text("not a flatbuffer")
    assert profile.main([str(not_a_model), "--reference", "none"]) == 2
    assert "text.tflite: not a LiteRT flatbuffer" in capsys.readouterr().err
    assert profile.main([str(two_layer_file), "--reference", str(not_a_model)]) == 2
    assert "--reference" in capsys.readouterr().err


def test_an_fp16_file_is_never_cut_right_after_a_constant_only_op(two_layer_file, tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), batch_size=1)
    hidden = keras.layers.Dense(32, activation="relu", name="first")(inputs)
    outputs = keras.layers.Dense(8, activation="tanh", name="second")(hidden)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    path = tmp_path / "fp16.tflite"
    path.write_bytes(converter.convert())
    content = path.read_bytes()
    constant = profile.constant_ops(content)
    assert constant[0] and sum(constant) >= 2          # the fp16 weights' DEQUANTIZE ops come first
    assert not any(profile.constant_ops(two_layer_file.read_bytes()))
    # At depth 2 each weight's DEQUANTIZE is a layer of its own ("second/MatMul1"): a cut after it
    # would end in a weight, which XNNPACK refuses to run.
    names = profile.op_output_names(content)
    layers = profile.constants_join_their_reader(profile.op_layers(names, depth=2), constant)
    first_reader = constant.index(False)
    assert layers[:first_reader] == [layers[first_reader]] * first_reader
    result = profile.profile(path, reference=None, depth=2, blocks=1, runs=2)   # every cut runs
    assert all(not constant[sum(s["ops"] for s in result["segments"][:i + 1]) - 1]
               for i in range(len(result["segments"])))
    assert sum(segment["ops"] for segment in result["segments"]) == len(constant)


def test_constant_only_ops_take_the_layer_of_the_next_op_that_is_not_one():
    layers = ["a", "z", "b", "x", "c", "d", "e"]
    constant = [True, False, True, True, False, True, True]
    joined = profile.constants_join_their_reader(layers, constant)
    assert joined == ["z", "z", "c", "c", "c", "c", "c"]        # trailing ones: the last reader's layer
    cuts = profile.layer_cuts(joined)
    assert all(not constant[keep - 1] for _, keep in cuts[:-1])
    assert profile.constants_join_their_reader(["a", "b"], [True, True]) == ["a", "b"]
