"""The paper's backbone: VGG19 convolutions with two deconvolution layers to conv8 (GPU territory)."""

from __future__ import annotations

import keras
from keras import layers

from rar_keras.backbones.blocks import conv_bn_relu, scaled

# VGG19 convolution blocks: (channels, convolutions); a 2x2 max-pool follows each block.
VGG19_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4))
# Pixels 0..255 are mapped to [-1, 1].
PIXEL_SCALE = 127.5


@keras.saving.register_keras_serializable(package="rar_keras")
class VGG19Backbone(keras.Model):
    """VGG19 to conv4 (stride 16 after four pools' worth of blocks), conv6-conv7 deconvolutions, conv8 heatmaps.

    Args:
        num_landmarks: heatmap channels L.
        feature_channels: channels of the features returned for SIP.
        heatmap_stride: output stride (4: two deconvolutions undo two of four pools).
        width: channel multiplier (1.0 is the paper's).
        momentum: batch-norm moving-average momentum.
    """

    def __init__(self, num_landmarks: int, feature_channels: int = 128, heatmap_stride: int = 4,
                 width: float = 1.0, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        if heatmap_stride != 4:
            raise ValueError("VGG19Backbone produces stride-4 heatmaps; set heatmap_stride=4")
        self.num_landmarks, self.feature_channels = num_landmarks, feature_channels
        self.heatmap_stride, self.width = heatmap_stride, width
        self.fine_stride = 2          # after the first block: what the refiner reads finer than the heatmap
        self.stages = [keras.Sequential([conv_bn_relu(scaled(channels, width), 3, momentum=momentum)
                                         for _ in range(convs)] + [layers.MaxPooling2D(2)])
                       for channels, convs in VGG19_BLOCKS]
        self.deconv6 = layers.Conv2DTranspose(scaled(256, width), 4, strides=2, padding="same",
                                              activation="relu")
        self.deconv7 = layers.Conv2DTranspose(feature_channels, 4, strides=2, padding="same",
                                              activation="relu")
        self.heatmap_head = layers.Conv2D(num_landmarks, 1, name="conv8")

    def call(self, images, training=None):
        x = images / PIXEL_SCALE - 1.0
        skips = []
        for stage in self.stages:
            x = stage(x, training=training)
            skips.append(x)
        features = self.deconv7(self.deconv6(x))
        return {"features": features, "heatmaps": self.heatmap_head(features), "fine_features": skips[0]}

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks,
                "feature_channels": self.feature_channels, "heatmap_stride": self.heatmap_stride,
                "width": self.width, "momentum": self.momentum}
