"""Recurrent attentive refinement: the A-LSTM picks an attention centre, the R-LSTM and a per-landmark
network move the shape."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from rar_keras.layers.coordinates import shape_scale
from rar_keras.layers.shape_indexed_pooling import ShapeIndexedPooling


@keras.saving.register_keras_serializable(package="rar_keras")
class AttentiveRefiner(keras.layers.Layer):
    """T unrolled steps of attentive refinement.

    At step t, every landmark l reads what lies at its current position S_t^l
    (shape-indexed pooling): the stride-2 encoder features in a small patch (finer
    than the heatmap cells, so the refiner sees what the detector cannot), the
    stride-4 features, its own heatmap probabilities around it, its visibility, its
    position in the normalised shape and a learned landmark embedding. One network
    shared by all landmarks turns this into phi_l.

    - Attention (A-LSTM): the cell reads a short summary of every phi_l; an additive
      scorer `v . tanh(W phi_l + U h)` gives each landmark a score, and the
      attention centre c* is sampled (training) or the argmax (inference). The
      attention sees phi through a stop-gradient: its policy gradient trains the
      attention only. A value head on h estimates the return (the REINFORCE baseline).
    - Weights `gamma_l = kappa * exp(-||S_l - S_c*||^2 / (4 (rho D)^2))`, D the shape's
      RMS radius and rho `attention_radius`: the landmarks near the centre.
    - Refinement (R-LSTM): the cell reads the gamma-weighted summaries, so its state
      carries the shape context of the attended region; a projection gives every
      landmark a context vector. The update `Delta S_l = alpha * D * g([phi_l, context_l])`
      comes from a second shared per-landmark network g.

    Args:
        num_landmarks: L.
        steps: T.
        lstm_units: units of both LSTM cells.
        channels: size of phi_l.
        summary_channels: size of each landmark's summary in the cells' input.
        context_channels: size of each landmark's context from the R-LSTM.
        hidden_units: width of the shared per-landmark networks.
        embedding_size: size of the landmark embedding.
        stride: crop pixels per stride-4 feature cell (heatmaps too).
        fine_stride: crop pixels per fine feature cell.
        fine_patch: side of the patch of fine features read around each landmark.
        heatmap_patch: side of the patch of the landmark's own heatmap probabilities.
        alpha: update scale, in units of the face's RMS radius.
        kappa: peak attention weight.
        attention_radius: rho.
        seed: seed of the attention sampling in training.

    Returns (dict): "shapes" (B, T+1, L, 2) from S_0 to S_T, "centres" (B, T) int32,
    "logits" (B, T, L) attention scores, "values" (B, T) return estimates, "gammas" (B, T, L),
    "scales" (B, T) the face scale D at each step.
    """

    def __init__(self, num_landmarks: int, steps: int = 3, lstm_units: int = 64, channels: int = 32,
                 summary_channels: int = 8, context_channels: int = 16, hidden_units: int = 64,
                 embedding_size: int = 8, stride: int = 4, fine_stride: int = 2, fine_patch: int = 3,
                 heatmap_patch: int = 5, alpha: float = 0.1, kappa: float = 1.0, attention_radius: float = 0.5,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.num_landmarks, self.steps, self.lstm_units = num_landmarks, steps, lstm_units
        self.channels, self.summary_channels, self.context_channels = channels, summary_channels, context_channels
        self.hidden_units, self.embedding_size = hidden_units, embedding_size
        self.stride, self.fine_stride, self.fine_patch, self.heatmap_patch = stride, fine_stride, fine_patch, heatmap_patch
        self.alpha, self.kappa, self.attention_radius, self.seed = alpha, kappa, attention_radius, seed
        self.fine_sip = ShapeIndexedPooling(stride=fine_stride, patch=fine_patch)
        self.coarse_sip = ShapeIndexedPooling(stride=stride, patch=1)
        self.heatmap_sip = ShapeIndexedPooling(stride=stride, patch=heatmap_patch, own_channel=True)
        self.embedding = self.add_weight(shape=(num_landmarks, embedding_size), initializer="random_normal",
                                         name="landmark_embedding")
        self.encode_hidden = layers.Dense(hidden_units, activation="relu", name="encode_hidden")
        self.encode = layers.Dense(channels, activation="relu", name="encode")
        self.summary = layers.Dense(summary_channels, name="summary")
        self.attention_cell = layers.LSTMCell(lstm_units, name="a_lstm")
        self.score_features = layers.Dense(hidden_units, use_bias=False, name="score_features")
        self.score_state = layers.Dense(hidden_units, name="score_state")
        self.score = layers.Dense(1, use_bias=False, name="score")
        self.value = layers.Dense(1, name="value")
        self.refine_cell = layers.LSTMCell(lstm_units, name="r_lstm")
        self.context = layers.Dense(num_landmarks * context_channels, name="context")
        self.update_hidden = layers.Dense(hidden_units, activation="relu", name="update_hidden")
        self.update = layers.Dense(2, kernel_initializer="zeros", name="update")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, features_shape, fine_shape=None, probabilities_shape=None, start_shape=None,
              visibility_shape=None):
        num = self.num_landmarks
        local = (self.fine_patch ** 2 * int(fine_shape[-1]) + int(features_shape[-1]) + self.heatmap_patch ** 2
                 + 1 + 2 + self.embedding_size)
        self.encode_hidden.build((None, num, local))
        self.encode.build((None, num, self.hidden_units))
        self.summary.build((None, num, self.channels))
        self.attention_cell.build((None, num * self.summary_channels))
        self.refine_cell.build((None, num * self.summary_channels))
        self.score_features.build((None, num, self.channels))
        self.score_state.build((None, self.lstm_units))
        self.score.build((None, num, self.hidden_units))
        self.value.build((None, self.lstm_units))
        self.context.build((None, self.lstm_units))
        self.update_hidden.build((None, num, self.channels + self.context_channels))
        self.update.build((None, num, self.hidden_units))

    def _zero_state(self, batch):
        zeros = tf.zeros([batch, self.lstm_units])
        return [zeros, zeros]

    def _local_features(self, features, fine, probabilities, shape, visibility, centre, scale):
        batch = tf.shape(shape)[0]
        embedding = tf.broadcast_to(self.embedding[None], [batch, self.num_landmarks, self.embedding_size])
        local = tf.concat([self.fine_sip(fine, shape), self.coarse_sip(features, shape),
                           self.heatmap_sip(probabilities, shape) * float(self.heatmap_patch ** 2),
                           visibility[..., None], (shape - centre) / scale, embedding], -1)
        return self.encode(self.encode_hidden(local))

    def call(self, features, fine, probabilities, start, visibility, training=None, sample_attention=None):
        sample = bool(training) if sample_attention is None else sample_attention
        batch = tf.shape(start)[0]
        attention_state, refine_state = self._zero_state(batch), self._zero_state(batch)
        shape = start
        shapes, centres, logits_all, values, gammas, scales = [shape], [], [], [], [], []
        for _ in range(self.steps):
            shape = tf.stop_gradient(shape)
            centre, scale = shape_scale(shape)
            phi = self._local_features(features, fine, probabilities, shape, visibility, centre, scale)   # (B, L, C)
            summary = self.summary(phi)                                                             # (B, L, S)
            # Attention: its policy gradient stops at phi.
            quiet_phi, quiet_summary = tf.stop_gradient(phi), tf.stop_gradient(summary)
            hidden, attention_state = self.attention_cell(tf.reshape(quiet_summary, [batch, -1]), attention_state,
                                                          training=training)
            energy = tf.tanh(self.score_features(quiet_phi) + self.score_state(hidden)[:, None, :])
            logits = self.score(energy)[..., 0]                                                      # (B, L)
            if sample:
                chosen = keras.random.categorical(logits, 1, seed=self.seed_generator, dtype="int32")[:, 0]
            else:
                chosen = tf.argmax(logits, -1, output_type=tf.int32)
            anchor = tf.reduce_sum(shape * tf.one_hot(chosen, self.num_landmarks)[..., None], 1, keepdims=True)
            radius = float(self.attention_radius) * scale[..., 0]                                   # (B, 1)
            gamma = self.kappa * tf.exp(-tf.reduce_sum(tf.square(shape - anchor), -1) / (4.0 * tf.square(radius)))
            # Refinement: the R-LSTM's state carries the attended region's context to every landmark.
            refine_in = tf.reshape(gamma[..., None] * summary, [batch, -1])
            hidden_r, refine_state = self.refine_cell(refine_in, refine_state, training=training)
            context = tf.reshape(self.context(hidden_r), [batch, self.num_landmarks, self.context_channels])
            step = self.update(self.update_hidden(tf.concat([phi, context], -1)))                   # (B, L, 2)
            shape = shape + float(self.alpha) * scale * step
            shapes.append(shape)
            centres.append(chosen)
            logits_all.append(logits)
            values.append(self.value(hidden)[:, 0])
            gammas.append(gamma)
            scales.append(scale[:, 0, 0])
        return {"shapes": tf.stack(shapes, 1), "centres": tf.stack(centres, 1), "logits": tf.stack(logits_all, 1),
                "values": tf.stack(values, 1), "gammas": tf.stack(gammas, 1), "scales": tf.stack(scales, 1)}

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks, "steps": self.steps,
                "lstm_units": self.lstm_units, "channels": self.channels,
                "summary_channels": self.summary_channels, "context_channels": self.context_channels,
                "hidden_units": self.hidden_units, "embedding_size": self.embedding_size, "stride": self.stride,
                "fine_stride": self.fine_stride, "fine_patch": self.fine_patch,
                "heatmap_patch": self.heatmap_patch, "alpha": self.alpha, "kappa": self.kappa,
                "attention_radius": self.attention_radius, "seed": self.seed}
