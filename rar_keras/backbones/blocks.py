"""Small building blocks shared by the backbones."""

from __future__ import annotations

import keras
from keras import layers


def conv_bn_relu(filters: int, kernel: int = 3, strides: int = 1, momentum: float = 0.99,
                 name: str = "") -> keras.Sequential:
    """Conv + BatchNorm + ReLU6."""
    return keras.Sequential([
        layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=momentum, synchronized=True),
        layers.ReLU(6.0),
    ], name=name or None)


def separable_bn_relu(filters: int, momentum: float = 0.99) -> keras.Sequential:
    """Depthwise 3x3 + BatchNorm + ReLU6, then 1x1 conv + BatchNorm + ReLU6."""
    return keras.Sequential([
        layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=momentum, synchronized=True),
        layers.ReLU(6.0),
        layers.Conv2D(filters, 1, use_bias=False),
        layers.BatchNormalization(momentum=momentum, synchronized=True),
        layers.ReLU(6.0),
    ])


@keras.saving.register_keras_serializable(package="rar_keras")
class InvertedResidual(keras.layers.Layer):
    """MobileNetV2 inverted residual block (expand 1x1, depthwise 3x3, project 1x1).

    Args:
        filters: output channels.
        strides: depthwise stride (1 or 2).
        expansion: channel expansion of the hidden layer.
        momentum: batch-norm moving-average momentum.
        kernel_size: depthwise kernel side.
        expand_unit: whether an expansion of 1 still has its 1x1 expand convolution
            (EfficientNet-Lite's first block has none; MobileBackbone's has one).
    """

    def __init__(self, filters: int, strides: int = 1, expansion: int = 4, momentum: float = 0.99,
                 kernel_size: int = 3, expand_unit: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides, self.expansion, self.momentum = filters, strides, expansion, momentum
        self.kernel_size, self.expand_unit = kernel_size, expand_unit

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = channels * self.expansion
        self.expand = (conv_bn_relu(hidden, 1, momentum=self.momentum)
                       if self.expansion != 1 or self.expand_unit else None)
        self.depthwise = keras.Sequential([
            layers.DepthwiseConv2D(self.kernel_size, strides=self.strides, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=self.momentum, synchronized=True),
            layers.ReLU(6.0),
        ])
        self.project = keras.Sequential([
            layers.Conv2D(self.filters, 1, use_bias=False),
            layers.BatchNormalization(momentum=self.momentum, synchronized=True),
        ])
        self.use_residual = self.strides == 1 and channels == self.filters
        shape = input_shape
        if self.expand is not None:
            self.expand.build(shape)
            shape = self.expand.compute_output_shape(shape)
        self.depthwise.build(shape)
        self.project.build(self.depthwise.compute_output_shape(shape))

    def call(self, x, training=None):
        y = x if self.expand is None else self.expand(x, training=training)
        y = self.project(self.depthwise(y, training=training), training=training)
        return x + y if self.use_residual else y

    def compute_output_shape(self, input_shape):
        h = input_shape[1] if input_shape[1] is None else -(-input_shape[1] // self.strides)
        w = input_shape[2] if input_shape[2] is None else -(-input_shape[2] // self.strides)
        return (input_shape[0], h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "expansion": self.expansion, "momentum": self.momentum, "kernel_size": self.kernel_size,
                "expand_unit": self.expand_unit}


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    """Channel count times the width multiplier, rounded to a multiple of 8."""
    return max(minimum, int(channels * width + 4) // 8 * 8)
