"""A MobileNetV2-style encoder-decoder that trains on CPUs: conv8 heatmaps at stride 4."""

from __future__ import annotations

import keras
from keras import layers

from rar_keras.backbones.blocks import InvertedResidual, conv_bn_relu, scaled, separable_bn_relu

# (channels, stride, repeats) of the encoder stages after the stem.
ENCODER_STAGES = ((16, 1, 1), (24, 2, 2), (32, 2, 3), (64, 2, 3), (96, 1, 2))
DECODERS = ("transposed", "separable")


@keras.saving.register_keras_serializable(package="rar_keras")
class MobileBackbone(keras.Model):
    """Inverted-residual encoder to stride 16, two transposed convolutions back to `heatmap_stride`.

    Skip connections from the encoder feed the decoder, as in a feature pyramid.

    Args:
        num_landmarks: heatmap channels L.
        feature_channels: channels of the features returned for SIP.
        heatmap_stride: output stride of features and heatmaps (4).
        width: channel multiplier.
        momentum: batch-norm moving-average momentum.
        decoder: "transposed" (4x4 transposed convolutions and a full 3x3 refine conv) or
            "separable" (1x1 conv, bilinear upsampling and depthwise 3x3 convs: about 8x fewer
            multiply-adds at stride 4, for phones).
        first_expansion: expansion of the first inverted-residual stage (MobileNetV2 uses 1; it
            runs at stride 2, so 4 costs about a third of the encoder's multiply-adds).

    Example:
        >>> features, heatmaps = MobileBackbone(68)(images_in_minus1_1)
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 64, heatmap_stride: int = 4,
                 width: float = 1.0, momentum: float = 0.99, decoder: str = "transposed",
                 first_expansion: int = 4, **kwargs):
        super().__init__(**kwargs)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.momentum, self.decoder, self.first_expansion = momentum, decoder, first_expansion
        if heatmap_stride != 4:
            raise ValueError("MobileBackbone produces stride-4 heatmaps; set heatmap_stride=4")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.heatmap_stride, self.width = heatmap_stride, width
        self.stem = conv_bn_relu(scaled(32, width), 3, strides=2, momentum=momentum)
        self.stages = []
        for index, (channels, stride, repeats) in enumerate(ENCODER_STAGES):
            blocks = [InvertedResidual(scaled(channels, width), stride if i == 0 else 1,
                                       expansion=first_expansion if index == 0 else 4,
                                       momentum=momentum)
                      for i in range(repeats)]
            self.stages.append(keras.Sequential(blocks))
        # Two deconvolutions (the paper's conv6/conv7 -> conv8), each merged with an encoder skip.
        self.up1 = _upsampler(feature_channels, decoder)
        self.skip1 = layers.Conv2D(feature_channels, 1, use_bias=False)
        self.norm1 = layers.BatchNormalization(momentum=momentum, synchronized=True)
        self.up2 = _upsampler(feature_channels, decoder)
        self.skip2 = layers.Conv2D(feature_channels, 1, use_bias=False)
        self.norm2 = layers.BatchNormalization(momentum=momentum, synchronized=True)
        self.refine = (conv_bn_relu(feature_channels, 3, momentum=momentum) if decoder == "transposed"
                       else separable_bn_relu(feature_channels, momentum=momentum))
        self.heatmap_head = layers.Conv2D(num_landmarks, 1, name="conv8")

    def call(self, images, training=None):
        x = self.stem(images, training=training)
        skips = []
        for stage in self.stages:
            x = stage(x, training=training)
            skips.append(x)
        stride4, stride8 = skips[1], skips[2]
        x = self.up1(x) + self.skip1(stride8)
        x = keras.activations.relu(self.norm1(x, training=training))
        x = self.up2(x) + self.skip2(stride4)
        x = keras.activations.relu(self.norm2(x, training=training))
        features = self.refine(x, training=training)
        return features, self.heatmap_head(features)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "heatmap_stride": self.heatmap_stride,
                "width": self.width, "momentum": self.momentum, "decoder": self.decoder,
                "first_expansion": self.first_expansion}


def _upsampler(channels: int, decoder: str) -> keras.layers.Layer:
    """x2 upsampling to `channels`: a 4x4 transposed conv, or 1x1 conv + bilinear + depthwise 3x3."""
    if decoder == "transposed":
        return layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False)
    return keras.Sequential([layers.Conv2D(channels, 1, use_bias=False),
                             layers.UpSampling2D(2, interpolation="bilinear"),
                             layers.DepthwiseConv2D(3, padding="same", use_bias=False)])
