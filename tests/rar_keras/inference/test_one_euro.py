"""The One Euro filter against its published equations, worked by hand."""

import math

import numpy as np
import pytest

from rar_keras.inference.one_euro import OneEuroConfig, OneEuroFilter


def _reference(values, times, min_cutoff, beta, d_cutoff):
    """Casiez et al. 2012, written out for one scalar stream."""
    def alpha(cutoff, elapsed):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / elapsed)

    out, x_prev, dx_prev = [values[0]], values[0], 0.0
    for i in range(1, len(values)):
        elapsed = times[i] - times[i - 1]
        dx = (values[i] - x_prev) / elapsed
        dx_hat = alpha(d_cutoff, elapsed) * dx + (1 - alpha(d_cutoff, elapsed)) * dx_prev
        cutoff = min_cutoff + beta * abs(dx_hat)
        x_hat = alpha(cutoff, elapsed) * values[i] + (1 - alpha(cutoff, elapsed)) * x_prev
        out.append(x_hat)
        x_prev, dx_prev = x_hat, dx_hat
    return np.array(out)


def test_filter_follows_the_published_equations():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.02, 0.05, 40))
    values = np.sin(times * 3) + rng.normal(0, 0.05, 40)
    config = OneEuroConfig(min_cutoff=1.2, beta=0.7, derivative_cutoff=1.5)
    smoother = OneEuroFilter(config)
    filtered = [smoother(np.array([v]), t)[0] for v, t in zip(values, times)]
    np.testing.assert_allclose(filtered, _reference(values, times, 1.2, 0.7, 1.5), rtol=1e-9, atol=1e-12)


def test_scale_makes_beta_size_independent():
    times = np.arange(20) / 30.0
    values = np.linspace(0, 1, 20) + np.random.default_rng(1).normal(0, 0.01, 20)
    small = OneEuroFilter(OneEuroConfig(beta=5.0, scale=1.0))
    large = OneEuroFilter(OneEuroConfig(beta=5.0, scale=100.0))
    a = np.array([small(np.array([v]), t)[0] for v, t in zip(values, times)])
    b = np.array([large(np.array([100 * v]), t)[0] for v, t in zip(values, times)])
    np.testing.assert_allclose(b, 100 * a, rtol=1e-9)


def test_a_still_signal_is_smoothed_and_reset_forgets():
    smoother = OneEuroFilter(OneEuroConfig(min_cutoff=0.5, beta=0.0))
    rng = np.random.default_rng(2)
    noisy = 10 + rng.normal(0, 1, 200)
    out = np.array([smoother(np.array([v]), t / 30.0)[0] for t, v in enumerate(noisy)])
    assert out[50:].std() < 0.3 * noisy[50:].std()
    smoother.reset()
    assert smoother(np.array([42.0]), 100.0)[0] == 42.0


@pytest.mark.parametrize("field, value", [("min_cutoff", 0.0), ("beta", -1.0), ("scale", 0.0)])
def test_bad_parameters_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        OneEuroConfig(**{field: value})


def test_moved_memory_follows_a_moving_signal_without_lag():
    """A signal that only moves (by a known affine map each step) comes out unfiltered once the
    filter's memory is moved with it; without the move the filter trails it."""
    points = np.array([[0.0, 0.0], [10.0, 5.0], [-3.0, 8.0]])
    step = np.array([[np.cos(0.05), -np.sin(0.05), 2.0], [np.sin(0.05), np.cos(0.05), -1.0]])
    moved, trailing = OneEuroFilter(OneEuroConfig(min_cutoff=0.5, beta=0.0)), \
        OneEuroFilter(OneEuroConfig(min_cutoff=0.5, beta=0.0))
    for frame in range(20):
        if frame:
            points = points @ step[:, :2].T + step[:, 2]
            moved.move(step)
        np.testing.assert_allclose(moved(points, frame / 30), points, atol=1e-9)
        late = trailing(points, frame / 30)
    assert np.abs(late - points).max() > 1.0


def test_a_move_turns_the_speed_memory_too():
    """Turning the stream by 90 degrees mid-way, with `move`, gives the turned output of the unturned
    stream: the per-coordinate speeds that set the cutoff turn with the points."""
    rng = np.random.default_rng(3)
    stream = np.cumsum(rng.normal(0, 1, (12, 4, 2)) * [3.0, 0.5], axis=0)   # fast in x, slow in y
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    config = OneEuroConfig(min_cutoff=0.5, beta=2.0, scale=4.0)
    plain, turned = OneEuroFilter(config), OneEuroFilter(config)
    for frame, points in enumerate(stream):
        expected = plain(points, frame / 30)
        if frame < 6:
            turned(points, frame / 30)
            continue
        if frame == 6:
            turned.move(turn)
        output = turned(points @ turn[:, :2].T, frame / 30)
        np.testing.assert_allclose(output, expected @ turn[:, :2].T, atol=1e-9)
