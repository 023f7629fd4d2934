"""Shape-indexed pooling at the shipped presets' map sizes, converted to LiteRT files.

A float16 file stores the graph's constants in float16, which holds whole numbers exactly only up
to 2,048: the pooling's index arithmetic must not rest on larger float constants (landmark l's
heatmap starts at cell l * H * W, up to 52,528 at 28 x 28 cells).
"""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from rar_keras.layers import ShapeIndexedPooling

LANDMARKS = 68
CASES = {  # the 112 px presets' maps: own heatmaps, stride-2 encoder features, stride-4 features
    "heatmaps": ((1, LANDMARKS, 28, 28), dict(stride=4, patch=5, own_channel=True)),
    "fine features": ((1, 56, 56, 16), dict(stride=2, patch=3)),
    "features": ((1, 28, 28, 64), dict(stride=4, patch=1)),
}


def _litert(layer, shape, quantize):
    function = tf.function(lambda maps, points: layer(maps, points),
                           input_signature=[tf.TensorSpec(shape), tf.TensorSpec((1, LANDMARKS, 2))])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], layer)
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner()
    return lambda maps, points: next(iter(runner(maps=maps, points=points).values()))


@pytest.mark.parametrize("quantize", ["none", "fp16"])
@pytest.mark.parametrize("case", list(CASES))
def test_litert_pooling_equals_keras_at_preset_sizes(case, quantize):
    shape, options = CASES[case]
    rng = np.random.default_rng(3)
    maps = rng.normal(size=shape).astype(np.float32)
    side = shape[2] * options["stride"]
    points = rng.uniform(-8, side + 8, (1, LANDMARKS, 2)).astype(np.float32)   # some beyond the edges
    layer = ShapeIndexedPooling(**options)
    expected = layer(maps, points).numpy()
    np.testing.assert_allclose(_litert(layer, shape, quantize)(maps, points), expected, atol=1e-5)
