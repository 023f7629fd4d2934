"""Recurrent attentive refinement: A-LSTM picks a reliable landmark, R-LSTM moves the shape."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from rar_keras.layers.coordinates import shape_scale
from rar_keras.layers.shape_indexed_pooling import ShapeIndexedPooling


@keras.saving.register_keras_serializable(package="rar_keras")
class AttentiveRefiner(keras.layers.Layer):
    """T unrolled steps of attentive refinement over SIP features.

    At each step the features at the current landmarks feed the attention cell
    (A-LSTM), whose per-landmark scores pick the attention centre c* (sampled
    in training, argmax otherwise). Weights
    `gamma_l = kappa * exp(-||S_l - S_c*||^2 / (4 D^2))` (D: the shape's RMS
    radius) scale each landmark's features for the refinement cell (R-LSTM),
    and `Delta S = alpha * gamma * D * (R-LSTM(...) + local)`, where `local` is a
    per-landmark linear read-out of that landmark's own features (the R-LSTM's
    state is a bottleneck for L independent point offsets).

    Args:
        num_landmarks: L.
        steps: T.
        lstm_units: units of both LSTM cells.
        sip_channels: per-landmark feature size after SIP's shared projection.
        sip_patch: SIP patch side.
        stride: crop pixels per feature cell.
        alpha: update step size.
        kappa: peak attention weight.
        seed: seed of the attention sampling in training.
        heatmap_patch: when > 0, each landmark also reads its own conv8 probabilities (passed to
            `call` as `heatmaps`, channel-major (B, L, H, W)) in a patch
            of this side around its current position (where its detector fires, relative to it).
        heatmap_channels: size of the projection of that patch.

    Returns (dict): "shapes" (B, T+1, L, 2) from S_0 to S_T, "centres" (B, T)
    int32, "logits" (B, T, L) attention scores, "gammas" (B, T, L), "scales" (B, T).
    """

    def __init__(self, num_landmarks: int, steps: int = 3, lstm_units: int = 256, sip_channels: int = 16,
                 sip_patch: int = 1, stride: int = 4, alpha: float = 0.5, kappa: float = 1.0,
                 seed: int = 0, heatmap_patch: int = 0, heatmap_channels: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.num_landmarks, self.steps, self.lstm_units = num_landmarks, steps, lstm_units
        self.sip_channels, self.sip_patch, self.stride = sip_channels, sip_patch, stride
        self.alpha, self.kappa, self.seed = alpha, kappa, seed
        self.heatmap_patch, self.heatmap_channels = heatmap_patch, heatmap_channels
        self.sip = ShapeIndexedPooling(stride=stride, patch=sip_patch)
        self.project = layers.Dense(sip_channels, activation="relu", name="sip_projection")
        if heatmap_patch:
            self.heatmap_sip = ShapeIndexedPooling(stride=stride, patch=heatmap_patch, own_channel=True)
            self.heatmap_project = layers.Dense(heatmap_channels, name="heatmap_projection")
        self.attention_cell = layers.LSTMCell(lstm_units, name="a_lstm")
        self.attention_head = layers.Dense(num_landmarks, name="attention_scores")
        self.refine_cell = layers.LSTMCell(lstm_units, name="r_lstm")
        self.refine_head = layers.Dense(2 * num_landmarks, kernel_initializer="zeros", name="shape_update")
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Per-landmark linear read-out of each landmark's own features: a local path beside the
        # R-LSTM, whose hidden state is too narrow to carry every point's own offset.
        own_features = sip_channels + (heatmap_channels if heatmap_patch else 0)
        self.local_kernel = self.add_weight(shape=(num_landmarks, own_features, 2), initializer="zeros",
                                            name="local_update")

    def build(self, features_shape, init_shape_shape=None):
        sip_size = self.sip_patch ** 2 * int(features_shape[-1])
        self.project.build((None, self.num_landmarks, sip_size))
        per_landmark = self.sip_channels + 2
        if self.heatmap_patch:
            self.heatmap_project.build((None, self.num_landmarks, self.heatmap_patch ** 2))
            per_landmark += self.heatmap_channels
        cell_input = self.num_landmarks * per_landmark
        self.attention_cell.build((None, cell_input))
        self.refine_cell.build((None, cell_input))
        self.attention_head.build((None, self.lstm_units))
        self.refine_head.build((None, self.lstm_units))


    def _zero_state(self, batch):
        zeros = tf.zeros([batch, self.lstm_units])
        return [zeros, zeros]

    def call(self, features, init_shape, heatmaps=None, training=None, sample_attention=None):
        sample = bool(training) if sample_attention is None else sample_attention
        batch = tf.shape(init_shape)[0]
        attention_state, refine_state = self._zero_state(batch), self._zero_state(batch)
        shape = init_shape
        shapes, centres, logits_all, gammas, scales = [shape], [], [], [], []
        for _ in range(self.steps):
            shape = tf.stop_gradient(shape)
            centre, scale = shape_scale(shape)
            normalised = (shape - centre) / scale
            phi = self.project(self.sip(features, shape))             # (B, L, C)
            if self.heatmap_patch:
                heat = self.heatmap_project(self.heatmap_sip(heatmaps, shape))   # own channel, (B, L, P*P)
                phi = tf.concat([phi, heat], -1)
            attention_in = tf.reshape(tf.concat([phi, normalised], -1), [batch, -1])
            hidden, attention_state = self.attention_cell(attention_in, attention_state, training=training)
            logits = self.attention_head(hidden)                      # (B, L)
            if sample:
                chosen = keras.random.categorical(logits, 1, seed=self.seed_generator, dtype="int32")[:, 0]
            else:
                chosen = tf.argmax(logits, -1, output_type=tf.int32)
            anchor = tf.reduce_sum(shape * tf.one_hot(chosen, self.num_landmarks)[..., None], 1,
                                   keepdims=True)
            gamma = self.kappa * tf.exp(-tf.reduce_sum(tf.square(shape - anchor), -1)
                                        / (4.0 * tf.square(scale[..., 0])))          # (B, L)
            refine_in = tf.reshape(tf.concat([gamma[..., None] * phi, normalised], -1), [batch, -1])
            hidden, refine_state = self.refine_cell(refine_in, refine_state, training=training)
            local = tf.reduce_sum(phi[..., None] * self.local_kernel, axis=2)          # (B, L, 2)
            update = tf.reshape(self.refine_head(hidden), [batch, self.num_landmarks, 2]) + local
            shape = shape + self.alpha * gamma[..., None] * scale * update
            shapes.append(shape)
            centres.append(chosen)
            logits_all.append(logits)
            gammas.append(gamma)
            scales.append(scale[:, 0, 0])
        return {"shapes": tf.stack(shapes, 1), "centres": tf.stack(centres, 1),
                "logits": tf.stack(logits_all, 1), "gammas": tf.stack(gammas, 1),
                "scales": tf.stack(scales, 1)}

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "steps": self.steps,
                "lstm_units": self.lstm_units, "sip_channels": self.sip_channels,
                "sip_patch": self.sip_patch, "stride": self.stride, "alpha": self.alpha,
                "kappa": self.kappa, "seed": self.seed, "heatmap_patch": self.heatmap_patch,
                "heatmap_channels": self.heatmap_channels}
