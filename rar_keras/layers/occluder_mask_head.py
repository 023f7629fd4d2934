"""Where an occluder covers the face crop, and the crop with that region painted over for a second pass."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="rar_keras")
class OccluderMaskHead(keras.layers.Layer):
    """Scores, per heatmap cell, whether an occluder covers it; paints the covered region grey.

    An occluder that looks like a photo (a hand, hair, another face) draws the detector's heatmaps
    onto itself, also for the landmarks it does not cover; a flat one does not. The head reads the
    detector's stride-4 features and its stride-2 features pooled to the same grid, through 3x3
    convolutions of growing dilation (1, 2, 4 and 8 by default: a receptive field of about 31 cells,
    most of the crop, so that a patch is judged against the face around it), and gives one logit per
    cell. `paint` upsamples the probabilities to the crop (bilinear) and
    paints `fill` over every pixel whose probability is above `threshold` (a hard cut: a
    half-painted, ghosted photo still draws the heatmaps). The model then runs its detector again
    on the painted crop.

    Args:
        channels: width of the convolutions.
        stride: crop pixels per heatmap cell (the features' stride).
        fine_stride: crop pixels per cell of the fine features (pooled to `stride`).
        fill: the grey level (0..255) painted over the covered region.
        threshold: the probability above which a pixel is painted over.
        dilations: the dilation rate of each 3x3 convolution, in order (their count is the depth).

    Call: `head(features (B, h, w, C), fine_features (B, h', w', C'))` -> logits (B, h, w, 1),
    positive = covered. `head.paint(images (B, S, S, 3), logits)` -> painted images.
    """

    def __init__(self, channels: int = 64, stride: int = 4, fine_stride: int = 2, fill: float = 128.0,
                 threshold: float = 0.5, dilations=(1, 2, 4, 8), **kwargs):
        super().__init__(**kwargs)
        if stride % fine_stride:
            raise ValueError(f"OccluderMaskHead: stride {stride} must be a multiple of fine_stride {fine_stride}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"OccluderMaskHead: threshold must be a probability in (0, 1), got {threshold}")
        if not 0.0 <= fill <= 255.0:
            raise ValueError(f"OccluderMaskHead: fill must be a pixel value 0..255, got {fill}")
        self.channels, self.stride, self.fine_stride = int(channels), int(stride), int(fine_stride)
        self.fill, self.threshold = float(fill), float(threshold)
        self.dilations = tuple(int(rate) for rate in dilations)
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"OccluderMaskHead: dilations must be rates >= 1, got {list(self.dilations)}")
        self.convolutions = [layers.Conv2D(self.channels, 3, padding="same", dilation_rate=rate, activation="relu",
                                           name=f"conv_{index}")
                             for index, rate in enumerate(self.dilations)]
        self.score = layers.Conv2D(1, 1, name="score")

    def build(self, features_shape, fine_features_shape):
        channels = int(features_shape[-1]) + int(fine_features_shape[-1])
        shape = (None, None, None, channels)
        for convolution in self.convolutions:
            convolution.build(shape)
            shape = (None, None, None, self.channels)
        self.score.build(shape)

    def call(self, features, fine_features):
        pool = self.stride // self.fine_stride
        fine = tf.nn.avg_pool2d(fine_features, pool, pool, "VALID") if pool > 1 else fine_features
        x = tf.concat([features, fine], -1)
        for convolution in self.convolutions:
            x = convolution(x)
        return self.score(x)

    def cover(self, logits, size: int):
        """(B, size, size, 1) bool: the crop pixels `paint` paints over."""
        probability = tf.image.resize(tf.sigmoid(logits), [size, size], method="bilinear")
        return probability > self.threshold

    def paint(self, images, logits):
        """`images` (B, S, S, 3) 0..255 with `fill` wherever `logits` say an occluder covers them."""
        cover = tf.cast(self.cover(logits, int(images.shape[1])), images.dtype)
        return images * (1.0 - cover) + self.fill * cover

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stride": self.stride,
                "fine_stride": self.fine_stride, "fill": self.fill, "threshold": self.threshold,
                "dilations": list(self.dilations)}
