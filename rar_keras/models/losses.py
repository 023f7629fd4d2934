"""The RAR training objective: heatmap cross-entropy, the decoded detector shape's regression, the
heatmaps' ambiguity-weighted regression, refinement regression, visibility, REINFORCE, and the
distillation of a teacher's heatmaps.

Every function returns a per-face loss (B,); distances are in units of the true shape's RMS
radius D* (scale-free: a face's size does not weigh on the loss), except the ambiguity loss's,
which are in units of each heatmap's own spread.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

from rar_keras.layers.coordinates import cell_grid, flatten_heatmaps, pixels_to_cells, shape_scale
from rar_keras.models.config import REFINE_CRITERIA

SMOOTH_L1_BETA = 0.02      # in units of D*: quadratic below, linear above (about 1 % NME)
WING_WIDTH = 0.1           # in units of D*: logarithmic below, linear above
WING_CURVATURE = 0.02      # in units of D*: the logarithm's scale
REWARD_UNITS = 100.0       # rewards in % of D*, so that they are of order 1


def heatmap_loss(logits, landmarks, stride: int, sigma: float):
    """Spatial softmax cross-entropy per landmark against a Gaussian around the true position.

    Reported as the KL divergence (the target's entropy removed), so a perfect
    detector scores 0.
    """
    _, height, width, _ = logits.shape
    flat = flatten_heatmaps(logits)
    grid_x, grid_y = cell_grid(height, width)
    cells = pixels_to_cells(landmarks, stride)
    sq = tf.square(grid_x - cells[..., :1]) + tf.square(grid_y - cells[..., 1:])
    target = tf.nn.softmax(-sq / (2.0 * sigma ** 2), axis=-1)
    log_probs = tf.nn.log_softmax(flat, axis=-1)
    kl = tf.reduce_sum(target * (tf.math.log(target + 1e-12) - log_probs), -1)
    return tf.reduce_mean(kl, -1)


def distillation_loss(logits, teacher_logits):
    """KL divergence from a teacher's spatial softmax to the student's, per landmark, averaged (B,).

    The teacher's heatmaps may come from a larger crop of the same face (more cells over the same
    extent): its logits are resized to the student's grid first (bilinear, cell centres aligned).
    """
    _, height, width, _ = logits.shape
    teacher_logits = tf.image.resize(tf.cast(teacher_logits, tf.float32), [height, width], method="bilinear")
    student = flatten_heatmaps(logits)
    teacher = flatten_heatmaps(teacher_logits)
    target = tf.nn.softmax(teacher, axis=-1)
    kl = tf.reduce_sum(target * (tf.nn.log_softmax(teacher, axis=-1) - tf.nn.log_softmax(student, axis=-1)), -1)
    return tf.reduce_mean(kl, -1)


def true_scale(landmarks):
    """D*: the RMS radius of the true shapes, (B, 1, 1)."""
    return shape_scale(landmarks)[1]


def smooth_l1(x, beta: float = SMOOTH_L1_BETA):
    """Huber-style: x^2 / (2 beta) below beta, |x| - beta / 2 above."""
    x = tf.abs(x)
    return tf.where(x < beta, 0.5 * tf.square(x) / beta, x - 0.5 * beta)


def wing(x, width: float = WING_WIDTH, curvature: float = WING_CURVATURE):
    """The Wing loss (Feng et al., CVPR 2018): `width * ln(1 + |x| / curvature)` below `width`, then
    `|x| - C`, with C chosen so that the two meet at `width` (their slopes there differ: 0.83 and 1
    with the defaults). Small errors weigh more than under smooth L1."""
    x = tf.abs(x)
    joint = width - width * tf.math.log(1.0 + width / curvature)
    return tf.where(x < width, width * tf.math.log(1.0 + x / curvature), x - joint)


def refinement_loss(shapes, landmarks, kind: str = "smooth_l1"):
    """Sum over steps t = 1..T of the mean per-coordinate loss of S_t against the truth, in units of D*.

    Args:
        shapes: (B, T+1, L, 2) from S_0 to S_T; S_0 gets no loss (it is the start).
        landmarks: (B, L, 2) the truth.
        kind: "smooth_l1" (`smooth_l1`) or "wing" (`wing`).
    """
    if kind not in REFINE_CRITERIA:
        raise ValueError(f"refine_criterion must be one of {REFINE_CRITERIA}, got {kind!r}")
    residual = (shapes[:, 1:] - landmarks[:, None]) / true_scale(landmarks)[:, None]
    per_coordinate = smooth_l1(residual) if kind == "smooth_l1" else wing(residual)
    return tf.reduce_sum(tf.reduce_mean(per_coordinate, axis=[-2, -1]), -1)


def decode_loss(detected, landmarks):
    """Mean smooth-L1 distance of the decoded detector shape S_d to the truth, in units of D*, (B,).

    S_d is what the model's `HeatmapDecoder` reads: the local expectation around each heatmap's
    argmax (differentiable in the probabilities of its window) or the global soft-argmax
    (differentiable in all of them). This trains the heatmaps to decode exactly where the truth is,
    which the cross-entropy to a Gaussian target does only on average.

    Args:
        detected: (B, L, 2) S_d in crop pixels (not differentiable with the plain argmax decode).
        landmarks: (B, L, 2) the truth.
    """
    residual = (detected - landmarks) / true_scale(landmarks)
    return tf.reduce_mean(smooth_l1(residual), axis=[-2, -1])


AMBIGUITY_EPS = 0.01       # added to each heatmap's covariance, in cells^2 (a floor of 0.1 cell std)


def ambiguity_loss(logits, landmarks, stride: int, omega: float):
    """STAR-style anisotropic regression of each heatmap's mean to the truth, per face (B,).

    Each landmark's spatial softmax is a distribution with mean mu and covariance Sigma. An
    ambiguous landmark (a point on the jaw line, an eyebrow's end) spreads along its contour, so
    Sigma is long in that direction. The error mu - truth is measured in Sigma's own units, the
    Mahalanobis distance sqrt(e' Sigma^-1 e), so that errors along a contour cost less than errors
    across it; `omega` times Sigma's trace (in units of the face's RMS radius D*, squared) penalises
    distributions that widen to shrink that distance. The distance is rotation-invariant, the
    norm of the error in Sigma's principal axes each scaled by 1/sqrt(lambda), which STAR sums per
    axis instead; it goes through a smooth-L1 with beta 1.

    Args:
        logits: (B, H, W, L) heatmap logits.
        landmarks: (B, L, 2) the truth, in crop pixels.
        stride: crop pixels per heatmap cell.
        omega: weight of the covariance's trace.
    """
    _, height, width, _ = logits.shape
    probs = tf.nn.softmax(flatten_heatmaps(logits), -1)
    grid_x, grid_y = cell_grid(height, width)
    mean_x = tf.reduce_sum(probs * grid_x, -1)
    mean_y = tf.reduce_sum(probs * grid_y, -1)
    dx = grid_x - mean_x[..., None]
    dy = grid_y - mean_y[..., None]
    sxx = tf.reduce_sum(probs * dx * dx, -1) + AMBIGUITY_EPS
    syy = tf.reduce_sum(probs * dy * dy, -1) + AMBIGUITY_EPS
    sxy = tf.reduce_sum(probs * dx * dy, -1)
    cells = pixels_to_cells(landmarks, stride)
    ex = cells[..., 0] - mean_x
    ey = cells[..., 1] - mean_y
    mahalanobis_sq = (syy * ex * ex - 2.0 * sxy * ex * ey + sxx * ey * ey) / (sxx * syy - sxy * sxy)
    distance = smooth_l1(tf.sqrt(mahalanobis_sq + 1e-12), beta=1.0)
    trace = (sxx + syy) * float(stride) ** 2 / tf.square(true_scale(landmarks)[..., 0])
    return tf.reduce_mean(distance + omega * trace, -1)


def visibility_loss(logits, visibility):
    """Mean binary cross-entropy per face: logits (B, L) against flags (B, L), 1 visible."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=visibility, logits=logits), -1)


def attended_error(shapes, gammas, landmarks):
    """E_t: the gamma-weighted mean distance to the truth of each shape, in % of D*.

    Args:
        shapes: (B, T, L, 2).
        gammas: (B, T, L) attention weights.
        landmarks: (B, L, 2).

    Returns: (B, T).
    """
    distance = tf.norm(shapes - landmarks[:, None], axis=-1) / true_scale(landmarks)[:, :, 0, None]
    return REWARD_UNITS * tf.reduce_sum(gammas * distance, -1) / tf.maximum(tf.reduce_sum(gammas, -1), 1e-6)


def rewards(refined: dict, landmarks):
    """R_t = E(S_t) - E(S_{t+1}) under step t's attention weights: how much the attended region
    improved, (B, T)."""
    shapes = tf.stop_gradient(refined["shapes"])
    gammas = tf.stop_gradient(refined["gammas"])
    return attended_error(shapes[:, :-1], gammas, landmarks) - attended_error(shapes[:, 1:], gammas, landmarks)


def returns_to_go(reward, eta: float):
    """G_t = sum_{k >= t} eta^(k-t) R_k, (B, T)."""
    steps = reward.shape[1]
    returns, running = [], tf.zeros_like(reward[:, 0])
    for t in reversed(range(steps)):
        running = reward[:, t] + eta * running
        returns.append(running)
    return tf.stack(returns[::-1], 1)


def attention_losses(refined: dict, landmarks, eta: float, entropy_weight: float):
    """REINFORCE with a learned per-face baseline: (policy loss (B,), value loss (B,)).

    policy: -sum_t (G_t - V_t) log pi(c_t) - entropy_weight * sum_t H(pi_t), the advantage held
    constant; value: sum_t (G_t - V_t)^2, which trains the baseline V.
    """
    returns = returns_to_go(rewards(refined, landmarks), eta)
    advantage = tf.stop_gradient(returns - refined["values"])
    policy = tfp.distributions.Categorical(logits=refined["logits"])
    log_prob = policy.log_prob(refined["centres"])
    policy_loss = -tf.reduce_sum(advantage * log_prob + entropy_weight * policy.entropy(), -1)
    value_loss = tf.reduce_sum(tf.square(returns - refined["values"]), -1)
    return policy_loss, value_loss
