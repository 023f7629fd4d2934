"""The decoder shared by the backbones: stride 16 back to stride 4 with encoder skips, then conv8."""

from __future__ import annotations

import keras
from keras import layers

from rar_keras.backbones.blocks import conv_bn_relu, separable_bn_relu

DECODERS = ("transposed", "separable")
# The name scope of a backbone's half-resolution front (input normalisation, stem, first stage):
# the int8 export keeps the ops under it float (export.tflite).
FRONT_SCOPE = "front"


@keras.saving.register_keras_serializable(package="rar_keras")
class LandmarkDecoder(keras.layers.Layer):
    """Two x2 upsamplings (the paper's conv6/conv7 deconvolutions), each merged with an encoder skip,
    a refining convolution, then one heatmap per landmark (conv8).

    Args:
        num_landmarks: heatmap channels L.
        feature_channels: channels of the stride-4 features (what SIP samples).
        decoder: "transposed" (4x4 transposed convolutions and a full 3x3 refine conv) or
            "separable" (1x1 conv, bilinear upsampling and depthwise 3x3 convs: about 8x fewer
            multiply-adds at stride 4, for phones).
        momentum: batch-norm moving-average momentum.

    Call: `decoder(stride16, stride8, stride4)` -> (stride-4 features, conv8 heatmap logits).
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 64, decoder: str = "separable",
                 momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.decoder, self.momentum = decoder, momentum
        self.up1 = _upsampler(feature_channels, decoder)
        self.skip1 = layers.Conv2D(feature_channels, 1, use_bias=False)
        self.norm1 = layers.BatchNormalization(momentum=momentum, synchronized=True)
        self.up2 = _upsampler(feature_channels, decoder)
        self.skip2 = layers.Conv2D(feature_channels, 1, use_bias=False)
        self.norm2 = layers.BatchNormalization(momentum=momentum, synchronized=True)
        self.refine = (conv_bn_relu(feature_channels, 3, momentum=momentum) if decoder == "transposed"
                       else separable_bn_relu(feature_channels, momentum=momentum))
        self.heatmap_head = layers.Conv2D(num_landmarks, 1, name="conv8")

    def call(self, stride16, stride8, stride4, training=None):
        x = self._merge(self.up1, self.skip1, self.norm1, stride16, stride8, training)
        x = self._merge(self.up2, self.skip2, self.norm2, x, stride4, training)
        features = self.refine(x, training=training)
        return features, self.heatmap_head(features)

    def _merge(self, upsampler, skip, norm, coarse, fine, training):
        """relu(norm(upsampler(coarse) + skip(fine))).

        At inference the batch norm is an affine map per channel: its scale is folded into the last
        convolution of each branch (both linear, without bias) and its shift added once, so the
        exported graph has no separate multiply and add at full resolution (the same values up to
        float rounding).

        Args:
            upsampler: the x2 upsampling branch (`_upsampler`).
            skip: the 1x1 convolution of the encoder skip.
            norm: the batch norm after their sum.
            coarse: the lower-resolution input of `upsampler`.
            fine: the encoder skip at the output resolution.
            training: Keras's training flag.
        """
        if training or not norm.built:          # the first call builds the layers
            return keras.activations.relu(norm(upsampler(coarse) + skip(fine), training=training))
        scale = norm.gamma * keras.ops.rsqrt(norm.moving_variance + norm.epsilon)     # (C,)
        shift = norm.beta - norm.moving_mean * scale
        if self.decoder == "transposed":        # kernel (h, w, out, in)
            up = keras.ops.conv_transpose(coarse, upsampler.kernel * scale[:, None], strides=2, padding="same")
        else:                                   # 1x1 conv, bilinear x2, depthwise kernel (h, w, C, 1)
            last = upsampler.layers[-1]
            up = upsampler.layers[1](upsampler.layers[0](coarse))
            up = keras.ops.depthwise_conv(up, last.kernel * scale[:, None], padding="same")
        side = keras.ops.conv(fine, skip.kernel * scale, padding="valid")
        return keras.activations.relu(up + shift + side)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "decoder": self.decoder,
                "momentum": self.momentum}


def encode_and_decode(fine, stages, decoder: LandmarkDecoder, training=None) -> dict:
    """The encoder `stages` after the first from its stride-2 output `fine`, then `decoder` on the last
    stage and the skips at strides 8 and 4: {"features", "heatmaps"} at stride 4 and "fine_features"
    (`fine`, what the refiner samples)."""
    x, skips = fine, [fine]
    for stage in stages:
        x = stage(x, training=training)
        skips.append(x)
    features, heatmaps = decoder(x, skips[2], skips[1], training=training)
    return {"features": features, "heatmaps": heatmaps, "fine_features": fine}


def _upsampler(channels: int, decoder: str) -> keras.layers.Layer:
    """x2 upsampling to `channels`: a 4x4 transposed conv, or 1x1 conv + bilinear + depthwise 3x3."""
    if decoder == "transposed":
        return layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False)
    return keras.Sequential([layers.Conv2D(channels, 1, use_bias=False),
                             layers.UpSampling2D(2, interpolation="bilinear"),
                             layers.DepthwiseConv2D(3, padding="same", use_bias=False)])
