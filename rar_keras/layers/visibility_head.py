"""Per-landmark visibility: is the detected point on the face, or hidden by an occluder?"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from rar_keras.layers.shape_indexed_pooling import ShapeIndexedPooling


@keras.saving.register_keras_serializable(package="rar_keras")
class VisibilityHead(keras.layers.Layer):
    """Scores each landmark's visibility from what is found where the detector put it.

    Reads the stride-4 features at the detected point (SIP), the landmark's own heatmap
    probabilities around it (a confident, compact peak is seldom an occluder), and a learned
    embedding of the landmark (its usual appearance); one small network shared by all landmarks.

    Args:
        num_landmarks: L.
        stride: crop pixels per feature / heatmap cell.
        heatmap_patch: side of the heatmap patch read around each point.
        hidden_units: width of the shared network.
        embedding_size: size of the landmark embedding.

    Call: `head(features (B, H, W, C), probabilities (B, L, H, W), points (B, L, 2))` -> logits (B, L),
    positive = visible.
    """

    def __init__(self, num_landmarks: int, stride: int = 4, heatmap_patch: int = 5, hidden_units: int = 64,
                 embedding_size: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.num_landmarks, self.stride, self.heatmap_patch = num_landmarks, stride, heatmap_patch
        self.hidden_units, self.embedding_size = hidden_units, embedding_size
        self.features_sip = ShapeIndexedPooling(stride=stride, patch=1)
        self.heatmap_sip = ShapeIndexedPooling(stride=stride, patch=heatmap_patch, own_channel=True)
        self.embedding = self.add_weight(shape=(num_landmarks, embedding_size), initializer="random_normal",
                                         name="landmark_embedding")
        self.hidden = layers.Dense(hidden_units, activation="relu", name="hidden")
        self.score = layers.Dense(1, name="score")

    def build(self, features_shape, probabilities_shape=None, points_shape=None):
        inputs = int(features_shape[-1]) + self.heatmap_patch ** 2 + self.embedding_size
        self.hidden.build((None, self.num_landmarks, inputs))
        self.score.build((None, self.num_landmarks, self.hidden_units))

    def call(self, features, probabilities, points):
        batch = tf.shape(points)[0]
        heat = self.heatmap_sip(probabilities, points)
        embedding = tf.broadcast_to(self.embedding[None], [batch, self.num_landmarks, self.embedding_size])
        inputs = tf.concat([self.features_sip(features, points), heat * float(self.heatmap_patch ** 2), embedding], -1)
        return self.score(self.hidden(inputs))[..., 0]

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "stride": self.stride,
                "heatmap_patch": self.heatmap_patch, "hidden_units": self.hidden_units,
                "embedding_size": self.embedding_size}
