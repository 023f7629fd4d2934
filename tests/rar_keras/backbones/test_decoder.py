"""The decoder's inference path (batch norm folded into the convolutions) against the plain layers."""

import keras
import numpy as np
import pytest

from rar_keras.backbones.decoder import DECODERS, LandmarkDecoder


def _unfolded(decoder, stride16, stride8, stride4):
    """relu(BN(up + skip)) twice with the layers' own inference calls: the reference."""
    x = decoder.up1(stride16) + decoder.skip1(stride8)
    x = keras.activations.relu(decoder.norm1(x, training=False))
    x = decoder.up2(x) + decoder.skip2(stride4)
    x = keras.activations.relu(decoder.norm2(x, training=False))
    features = decoder.refine(x, training=False)
    return features, decoder.heatmap_head(features)


@pytest.mark.parametrize("kind", DECODERS)
def test_folded_batch_norm_gives_the_layers_values(kind, monkeypatch):
    keras.utils.set_random_seed(0)     # the layers' initial weights: features far from zero (checked below)
    rng = np.random.default_rng(0)
    decoder = LandmarkDecoder(5, feature_channels=8, decoder=kind)
    stride16, stride8, stride4 = (rng.normal(size=(2, s, s, c)).astype(np.float32)
                                  for s, c in ((4, 12), (8, 6), (16, 4)))
    decoder(stride16, stride8, stride4)
    for norm in (decoder.norm1, decoder.norm2):    # statistics far from the identity map
        channels = norm.gamma.shape[0]
        norm.gamma.assign(rng.uniform(0.3, 3.0, channels))
        norm.beta.assign(rng.normal(size=channels))
        norm.moving_mean.assign(rng.normal(size=channels))
        norm.moving_variance.assign(rng.uniform(0.1, 4.0, channels))

    def not_folded(*args, **kwargs):
        raise AssertionError("the inference path called the batch norm instead of folding it")

    with monkeypatch.context() as patched:
        for norm in (decoder.norm1, decoder.norm2):
            patched.setattr(norm, "call", not_folded)
        features, heatmaps = decoder(stride16, stride8, stride4, training=False)
    expected_features, expected_heatmaps = _unfolded(decoder, stride16, stride8, stride4)
    assert float(keras.ops.std(expected_features)) > 0.1
    np.testing.assert_allclose(features, expected_features, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(heatmaps, expected_heatmaps, rtol=1e-4, atol=1e-4)


def test_training_path_normalises_with_the_batch():
    """In training the batch norm uses the batch's statistics (nothing folded): the outputs differ
    from inference when the moving statistics are not the batch's."""
    rng = np.random.default_rng(1)
    decoder = LandmarkDecoder(3, feature_channels=4)
    inputs = [rng.normal(size=(4, s, s, 4)).astype(np.float32) for s in (4, 8, 16)]
    decoder(*inputs)
    decoder.norm1.moving_mean.assign(np.full(4, 5.0, np.float32))
    trained = decoder(*inputs, training=True)[1]
    inferred = decoder(*inputs, training=False)[1]
    assert float(np.abs(np.asarray(trained) - np.asarray(inferred)).max()) > 1e-2
