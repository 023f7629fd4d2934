"""A MobileNetV2-style encoder-decoder that trains on CPUs: conv8 heatmaps at stride 4."""

from __future__ import annotations

import keras

from rar_keras.backbones.blocks import InvertedResidual, conv_bn_relu, scaled
from rar_keras.backbones.decoder import DECODERS, FRONT_SCOPE, LandmarkDecoder, encode_and_decode

# (channels, stride, repeats) of the encoder stages after the stem.
ENCODER_STAGES = ((16, 1, 1), (24, 2, 2), (32, 2, 3), (64, 2, 3), (96, 1, 2))
# Pixels 0..255 are mapped to [-1, 1].
PIXEL_SCALE = 127.5


@keras.saving.register_keras_serializable(package="rar_keras")
class MobileBackbone(keras.Model):
    """Inverted-residual encoder to stride 16, the landmark decoder back to stride 4.

    Skip connections from the encoder feed the decoder (`LandmarkDecoder`), as in a feature
    pyramid. Pixels (0..255 RGB) are normalised inside.

    Args:
        num_landmarks: heatmap channels L.
        feature_channels: channels of the features returned for SIP.
        heatmap_stride: output stride of features and heatmaps (4).
        width: channel multiplier.
        momentum: batch-norm moving-average momentum.
        decoder: "transposed" or "separable" (see `LandmarkDecoder`).
        first_expansion: expansion of the first inverted-residual stage (MobileNetV2 uses 1; it
            runs at stride 2, so 4 costs about a third of the encoder's multiply-adds).

    Example:
        >>> outputs = MobileBackbone(68)(pixels_0_255)   # "features", "heatmaps", "fine_features"
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 64, heatmap_stride: int = 4,
                 width: float = 1.0, momentum: float = 0.99, decoder: str = "transposed",
                 first_expansion: int = 4, **kwargs):
        super().__init__(**kwargs)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.momentum, self.decoder_kind, self.first_expansion = momentum, decoder, first_expansion
        if heatmap_stride != 4:
            raise ValueError("MobileBackbone produces stride-4 heatmaps; set heatmap_stride=4")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.fine_stride = 2          # the first stage's output: what the refiner reads finer than the heatmap
        self.heatmap_stride, self.width = heatmap_stride, width
        self.stem = conv_bn_relu(scaled(32, width), 3, strides=2, momentum=momentum)
        self.stages = []
        for index, (channels, stride, repeats) in enumerate(ENCODER_STAGES):
            blocks = [InvertedResidual(scaled(channels, width), stride if i == 0 else 1,
                                       expansion=first_expansion if index == 0 else 4,
                                       momentum=momentum)
                      for i in range(repeats)]
            self.stages.append(keras.Sequential(blocks))
        self.decoder = LandmarkDecoder(num_landmarks, feature_channels, decoder, momentum)

    def call(self, images, training=None):
        with keras.name_scope(FRONT_SCOPE):          # stride 2: the int8 export keeps it float
            fine = self.stages[0](self.stem(images / PIXEL_SCALE - 1.0, training=training), training=training)
        return encode_and_decode(fine, self.stages[1:], self.decoder, training)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "heatmap_stride": self.heatmap_stride,
                "width": self.width, "momentum": self.momentum, "decoder": self.decoder_kind,
                "first_expansion": self.first_expansion}

