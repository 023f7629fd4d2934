"""The RAR training objective: heatmap cross-entropy, weighted refinement regression, REINFORCE."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from rar_keras.layers.coordinates import cell_grid, pixels_to_cells, shape_scale

REWARD_STD_FLOOR = 1e-5   # in face-radius^2 units: reward spreads below this carry no signal


def heatmap_loss(logits, landmarks, stride: int, sigma: float):
    """Spatial softmax cross-entropy per landmark against a Gaussian around the true position.

    Reported as the KL divergence (the target's entropy removed), so a perfect
    detector scores 0. Returns the per-face loss (B,).
    """
    _, height, width, num = logits.shape
    flat = tf.transpose(tf.reshape(logits, [-1, height * width, num]), [0, 2, 1])   # (B, L, HW)
    grid_x, grid_y = cell_grid(height, width)
    cells = pixels_to_cells(landmarks, stride)
    sq = tf.square(grid_x - cells[..., :1]) + tf.square(grid_y - cells[..., 1:])
    target = tf.nn.softmax(-sq / (2.0 * sigma ** 2), axis=-1)
    log_probs = tf.nn.log_softmax(flat, axis=-1)
    kl = tf.reduce_sum(target * (tf.math.log(target + 1e-12) - log_probs), -1)
    return tf.reduce_mean(kl, -1)


def weighted_residue(gammas, residue, scales):
    """||Gamma (residue)||^2 / D^2 per face and step: residue (B, T, L, 2), gammas (B, T, L)."""
    sq = tf.reduce_sum(tf.square(residue), -1) / tf.square(scales[..., None])
    return tf.reduce_mean(gammas * sq, -1)


def refinement_and_attention_losses(refined: dict, landmarks, eta: float):
    """Per-face refinement loss (B,) and REINFORCE attention loss (B,).

    refinement: sum over steps of ||Gamma_t (Delta_R S_t - Delta S_t)||^2, where
    Delta_R S_t = S* - S_t is the true residue (in units of the true shape's RMS radius).
    attention: -sum_t eta^(t-1) (R_t - mean R_t) log pi(c_t), with the reward
    R_t = ||Gamma_t Delta_R S_t||^2 - ||Gamma_t Delta_R S_(t+1)||^2 (how much the
    weighted residue shrank), standardised over the batch (mean baseline, unit variance).
    """
    shapes = tf.stop_gradient(refined["shapes"][:, :-1])
    steps_out = refined["shapes"][:, 1:]
    gammas = tf.stop_gradient(refined["gammas"])
    _, radius = shape_scale(landmarks)
    scales = tf.broadcast_to(radius[:, :, 0], tf.shape(refined["scales"]))   # the true face scale
    target = landmarks[:, None]
    refine = weighted_residue(gammas, (target - shapes) - (steps_out - shapes), scales)
    before = weighted_residue(gammas, target - shapes, scales)
    after = weighted_residue(gammas, target - tf.stop_gradient(steps_out), scales)
    reward = before - after                                               # (B, T)
    # Rewards are squared residues in face-scale units (~1e-3): standardise them over the batch so
    # the policy gradient does not vanish (the attention collapsed onto one landmark otherwise). The
    # floor keeps near-equal rewards (rounding noise, tiny batches) from being blown up to +-1.
    mean, variance = tf.nn.moments(reward, axes=[0], keepdims=True)
    advantage = tf.stop_gradient((reward - mean) / tf.maximum(tf.sqrt(variance), REWARD_STD_FLOOR))
    log_prob = tfp.distributions.Categorical(logits=refined["logits"]).log_prob(refined["centres"])
    num_steps = refined["logits"].shape[1]
    discount = tf.constant([eta ** t for t in range(num_steps)], tf.float32)
    attention = -tf.reduce_sum(discount * advantage * log_prob, -1)
    return tf.reduce_sum(refine, -1), attention
