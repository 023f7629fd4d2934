"""The training objective against NumPy computed independently, gradient descent on the decode loss through
the heatmap decoder and on the ambiguity loss, and REINFORCE learning a rewarded landmark."""

import numpy as np
import pytest
import tensorflow as tf

from rar_keras.models import losses

RNG = np.random.default_rng(0)


def _radius(landmarks):
    centred = landmarks - landmarks.mean(1, keepdims=True)
    return np.sqrt((centred ** 2).sum(-1).mean(-1))          # (B,)


def test_heatmap_loss_is_the_kl_divergence_to_a_gaussian():
    batch, size, num, stride, sigma = 2, 6, 3, 4, 1.0
    logits = RNG.normal(size=(batch, size, size, num)).astype(np.float32)
    landmarks = RNG.uniform(2, 20, size=(batch, num, 2)).astype(np.float32)
    expected = np.zeros(batch)
    ys, xs = np.mgrid[0:size, 0:size]
    for b in range(batch):
        for l in range(num):
            cx, cy = (landmarks[b, l] + 0.5) / stride - 0.5
            target = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).ravel()
            target /= target.sum()
            z = logits[b, :, :, l].ravel()
            log_p = z - z.max() - np.log(np.exp(z - z.max()).sum())
            expected[b] += (target * (np.log(target + 1e-12) - log_p)).sum() / num
    np.testing.assert_allclose(losses.heatmap_loss(logits, landmarks, stride, sigma).numpy(), expected, rtol=1e-4)


def test_refinement_loss_is_smooth_l1_in_face_radius_units():
    truth = RNG.uniform(0, 100, size=(2, 5, 2)).astype(np.float32)
    shapes = truth[:, None] + RNG.normal(0, 3, size=(2, 4, 5, 2)).astype(np.float32)
    residual = np.abs((shapes[:, 1:] - truth[:, None]) / _radius(truth)[:, None, None, None])
    beta = losses.SMOOTH_L1_BETA
    per_value = np.where(residual < beta, 0.5 * residual ** 2 / beta, residual - 0.5 * beta)
    expected = per_value.mean(axis=(-2, -1)).sum(-1)
    np.testing.assert_allclose(losses.refinement_loss(shapes, truth).numpy(), expected, rtol=1e-5)


def test_refinement_loss_wing_is_logarithmic_below_its_width_and_continuous_at_it():
    rng = np.random.default_rng(7)              # its own: the module's draws stay those of the other tests
    truth = rng.uniform(0, 100, size=(2, 5, 2)).astype(np.float32)
    shapes = truth[:, None] + rng.normal(0, 6, size=(2, 3, 5, 2)).astype(np.float32)
    residual = np.abs((shapes[:, 1:] - truth[:, None]) / _radius(truth)[:, None, None, None])
    w, eps = losses.WING_WIDTH, losses.WING_CURVATURE
    assert (residual < w).any() and (residual > w).any()          # both branches are checked
    per_value = np.where(residual < w, w * np.log1p(residual / eps), residual - (w - w * np.log1p(w / eps)))
    expected = per_value.mean(axis=(-2, -1)).sum(-1)
    np.testing.assert_allclose(losses.refinement_loss(shapes, truth, "wing").numpy(), expected, rtol=1e-5)
    around = losses.wing(tf.constant([w - 1e-6, w + 1e-6])).numpy()
    assert around[1] - around[0] == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="refine_criterion must be one of"):
        losses.refinement_loss(shapes, truth, "l2")


def test_visibility_loss_is_binary_cross_entropy():
    logits = RNG.normal(size=(3, 7)).astype(np.float32)
    flags = (RNG.random((3, 7)) > 0.3).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = -(flags * np.log(p) + (1 - flags) * np.log(1 - p)).mean(-1)
    np.testing.assert_allclose(losses.visibility_loss(logits, flags).numpy(), expected, rtol=1e-5)


def test_rewards_returns_and_the_policy_gradient_loss():
    batch, steps, num, eta, beta = 2, 3, 4, 0.9, 0.01
    truth = RNG.uniform(0, 50, size=(batch, num, 2)).astype(np.float32)
    shapes = truth[:, None] + RNG.normal(0, 2, size=(batch, steps + 1, num, 2)).astype(np.float32)
    gammas = RNG.uniform(0.1, 1, size=(batch, steps, num)).astype(np.float32)
    logits = RNG.normal(size=(batch, steps, num)).astype(np.float32)
    centres = RNG.integers(0, num, size=(batch, steps)).astype(np.int32)
    values = RNG.normal(size=(batch, steps)).astype(np.float32)
    refined = {"shapes": shapes, "gammas": gammas, "logits": logits, "centres": centres, "values": values}

    distance = np.linalg.norm(shapes - truth[:, None], axis=-1) / _radius(truth)[:, None, None]
    error = lambda d, g: 100 * (g * d).sum(-1) / g.sum(-1)            # noqa: E731
    reward = error(distance[:, :-1], gammas) - error(distance[:, 1:], gammas)
    np.testing.assert_allclose(losses.rewards(refined, truth).numpy(), reward, rtol=1e-4, atol=1e-4)
    returns = np.stack([sum(eta ** (k - t) * reward[:, k] for k in range(t, steps)) for t in range(steps)], 1)
    np.testing.assert_allclose(losses.returns_to_go(tf.constant(reward), eta).numpy(), returns, rtol=1e-5)

    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    chosen = np.take_along_axis(log_p, centres[..., None], -1)[..., 0]
    entropy = -(np.exp(log_p) * log_p).sum(-1)
    policy, value = losses.attention_losses(refined, truth, eta, beta)
    np.testing.assert_allclose(policy.numpy(), -((returns - values) * chosen + beta * entropy).sum(-1), rtol=1e-4)
    np.testing.assert_allclose(value.numpy(), ((returns - values) ** 2).sum(-1), rtol=1e-4)


def test_reinforce_learns_to_attend_to_the_rewarded_landmark():
    """Landmark 3 is the only one whose refinement shrinks the error; the policy learns to attend to it.

    The landmarks lie far apart on a line, so gamma is (nearly) one-hot at the chosen centre, and the
    reward is the real one (`losses.rewards`), as is the loss with its learned baseline.
    """
    num, batch, rewarded = 6, 32, 3
    truth = np.stack([np.arange(num) * 100.0, np.zeros(num)], -1).astype(np.float32)[None].repeat(batch, 0)
    before = truth + 10.0                                   # every landmark off by the same amount
    after = before.copy()
    after[:, rewarded] = truth[:, rewarded]                # the refinement fixes landmark 3 only
    shapes = np.stack([before, after], 1)
    logits = tf.Variable(tf.zeros([num]))
    baseline = tf.Variable(0.0)
    optimizer = tf.keras.optimizers.SGD(0.05)
    for _ in range(150):
        centres = tf.random.categorical(tf.repeat(logits[None], batch, 0), 1, dtype=tf.int32)
        gammas = tf.one_hot(centres[:, 0], num)[:, None] * 0.999 + 0.001 / num
        with tf.GradientTape() as tape:
            refined = {"shapes": shapes, "gammas": gammas, "centres": centres,
                       "logits": tf.repeat(logits[None, None], batch, 0), "values": tf.fill([batch, 1], baseline)}
            policy, value = losses.attention_losses(refined, truth, 0.9, 0.001)
            loss = tf.reduce_mean(policy + 0.1 * value)
        optimizer.apply_gradients(zip(tape.gradient(loss, [logits, baseline]), [logits, baseline]))
    probabilities = tf.nn.softmax(logits).numpy()
    assert probabilities.argmax() == rewarded and probabilities[rewarded] > 0.8, probabilities


@pytest.mark.parametrize("value", [0.0, 0.01, 0.05, 1.0])
def test_smooth_l1_matches_its_definition(value):
    beta = losses.SMOOTH_L1_BETA
    expected = 0.5 * value ** 2 / beta if value < beta else value - 0.5 * beta
    assert losses.smooth_l1(tf.constant(value)).numpy() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("factor", [1, 2])
def test_distillation_loss_is_the_kl_divergence_from_the_teachers_softmax(factor):
    batch, size, num = 2, 4, 3
    logits = RNG.normal(size=(batch, size, size, num)).astype(np.float32)
    teacher = RNG.normal(size=(batch, size * factor, size * factor, num)).astype(np.float32)
    # Halving a grid with aligned cell centres averages each 2x2 block of the teacher's logits.
    on_grid = teacher.reshape(batch, size, factor, size, factor, num).mean((2, 4))
    expected = np.zeros(batch)
    for b in range(batch):
        for l in range(num):
            t, z = on_grid[b, :, :, l].ravel(), logits[b, :, :, l].ravel()
            p_t, p_s = np.exp(t - t.max()) / np.exp(t - t.max()).sum(), np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            expected[b] += (p_t * np.log(p_t / p_s)).sum() / num
    np.testing.assert_allclose(losses.distillation_loss(logits, teacher).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert np.abs(losses.distillation_loss(on_grid, teacher).numpy()).max() < 1e-5      # matched: no loss


def test_decode_loss_is_smooth_l1_of_the_detected_shape_in_face_radius_units():
    truth = RNG.uniform(0, 100, size=(3, 6, 2)).astype(np.float32)
    detected = truth + RNG.normal(0, 2, size=truth.shape).astype(np.float32)
    residual = np.abs((detected - truth) / _radius(truth)[:, None, None])
    beta = losses.SMOOTH_L1_BETA
    expected = np.where(residual < beta, 0.5 * residual ** 2 / beta, residual - 0.5 * beta).mean(axis=(-2, -1))
    np.testing.assert_allclose(losses.decode_loss(detected, truth).numpy(), expected, rtol=1e-5)


def test_the_decode_loss_trains_heatmaps_to_decode_at_the_truth():
    """Gradient descent on the decode loss alone, through the decoder's local expectation, moves each
    decoded point from a peak's cell centre to an off-centre truth."""
    from rar_keras.layers import HeatmapDecoder

    size, num, stride = 8, 3, 4
    decoder = HeatmapDecoder(stride=stride)
    cells = np.array([[2, 3], [5, 5], [4, 1]], np.float32)
    ys, xs = np.mgrid[0:size, 0:size]
    peaks = -((xs[..., None] - cells[:, 0]) ** 2 + (ys[..., None] - cells[:, 1]) ** 2)    # (H, W, L)
    logits = tf.Variable(peaks[None].astype(np.float32))
    truth = tf.constant(((cells + [0.35, -0.3] + 0.5) * stride - 0.5)[None].astype(np.float32))  # off the centres
    optimizer = tf.keras.optimizers.SGD(5.0)
    start = float(losses.decode_loss(decoder(logits)[0], truth)[0])
    for _ in range(200):
        with tf.GradientTape() as tape:
            loss = losses.decode_loss(decoder(logits)[0], truth)
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
    detected = decoder(logits)[0].numpy()[0]
    assert start > 0.01
    np.testing.assert_allclose(detected, truth.numpy()[0], atol=0.15 * stride)
    assert float(losses.decode_loss(detected[None], truth)[0]) < 0.2 * start


def test_ambiguity_loss_against_the_eigen_decomposition_in_numpy():
    """The Mahalanobis distance of the truth under each heatmap's covariance, computed here as the
    norm of the error in the covariance's principal axes scaled by 1/sqrt(lambda) (numpy.linalg.eigh)."""
    batch, size, num, stride, omega = 2, 7, 3, 4, 0.5
    ys, xs = np.mgrid[0:size, 0:size]
    peaks = RNG.uniform(1, size - 2, size=(batch, 1, 1, num, 2))
    bumps = -((xs[..., None] - peaks[..., 0]) ** 2 + (ys[..., None] - peaks[..., 1]) ** 2) / (2 * 1.5 ** 2)
    logits = (bumps + RNG.normal(0, 0.5, size=bumps.shape)).astype(np.float32)
    landmarks = RNG.uniform(0, size * stride, size=(batch, num, 2)).astype(np.float32)
    # The first landmark of each face a fraction of a cell from its peak: the smooth-L1's quadratic branch.
    landmarks[:, 0] = (peaks[:, 0, 0, 0] + 0.5 + RNG.uniform(-0.3, 0.3, size=(batch, 2))) * stride - 0.5
    grid = np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64)          # (HW, 2) cells
    expected = np.zeros(batch)
    for b in range(batch):
        for l in range(num):
            z = logits[b, :, :, l].ravel().astype(np.float64)
            p = np.exp(z - z.max())
            p /= p.sum()
            mean = p @ grid
            centred = grid - mean
            covariance = (p[:, None] * centred).T @ centred + losses.AMBIGUITY_EPS * np.eye(2)
            eigenvalues, eigenvectors = np.linalg.eigh(covariance)
            error = (landmarks[b, l] + 0.5) / stride - 0.5 - mean
            distance = np.linalg.norm((eigenvectors.T @ error) / np.sqrt(eigenvalues))
            huber = 0.5 * distance ** 2 if distance < 1.0 else distance - 0.5
            trace = eigenvalues.sum() * stride ** 2 / _radius(landmarks)[b] ** 2
            expected[b] += (huber + omega * trace) / num
    np.testing.assert_allclose(losses.ambiguity_loss(logits, landmarks, stride, omega).numpy(), expected, rtol=1e-4)


def test_the_ambiguity_loss_costs_less_along_a_heatmaps_long_axis():
    """One heatmap stretched along x: the same error costs less along x than along y."""
    size, stride = 16, 4
    ys, xs = np.mgrid[0:size, 0:size]
    logits = (-((xs - 8.0) ** 2) / (2 * 3.0 ** 2) - (ys - 8.0) ** 2 / (2 * 0.7 ** 2))[None, ..., None]
    centre = (8.0 + 0.5) * stride - 0.5

    def loss(offset):
        truth = np.array([[[centre + offset[0], centre + offset[1]]]], np.float32)
        return float(losses.ambiguity_loss(logits.astype(np.float32), truth, stride, 0.0)[0])

    assert loss((6.0, 0.0)) < 0.5 * loss((0.0, 6.0))


def _descend_on_the_ambiguity_loss(omega: float, steps: int = 300):
    """Gradient descent on the ambiguity loss alone from peaks at cell centres to truths off them;
    returns each heatmap's mean and covariance trace (cells, cells^2) and the loss before and after."""
    size, num, stride = 8, 3, 4
    cells = np.array([[2, 3], [5, 5], [4, 1]], np.float32)
    ys, xs = np.mgrid[0:size, 0:size]
    peaks = -((xs[..., None] - cells[:, 0]) ** 2 + (ys[..., None] - cells[:, 1]) ** 2)
    logits = tf.Variable(peaks[None].astype(np.float32))
    target = cells + [0.6, -0.5]
    truth = tf.constant(((target + 0.5) * stride - 0.5)[None].astype(np.float32))
    optimizer = tf.keras.optimizers.SGD(1.0)
    start = float(losses.ambiguity_loss(logits, truth, stride, omega)[0])
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = losses.ambiguity_loss(logits, truth, stride, omega)
        optimizer.apply_gradients([(tape.gradient(loss, logits), logits)])
    probs = tf.nn.softmax(tf.reshape(tf.transpose(logits[0], [2, 0, 1]), [num, -1]), -1).numpy()
    grid = np.stack([xs.ravel(), ys.ravel()], -1)
    mean = probs @ grid
    trace = (probs * ((grid[None] - mean[:, None]) ** 2).sum(-1)).sum(-1)
    return target, mean, trace, start, float(losses.ambiguity_loss(logits, truth, stride, omega)[0])


def test_the_ambiguity_loss_moves_heatmaps_onto_the_truth_and_its_trace_term_keeps_them_narrow():
    target, mean, trace, start, end = _descend_on_the_ambiguity_loss(omega=1.0)
    np.testing.assert_allclose(mean, target, atol=0.1)
    assert end < 0.5 * start
    _, _, wide, _, _ = _descend_on_the_ambiguity_loss(omega=0.0)
    assert np.all(trace < 0.8 * wide)
