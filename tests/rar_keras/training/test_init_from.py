"""`rar_keras.train --init-from`: training starts from another model's weights, matched by layer path."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.paths import REPO

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TIMEOUT_S = 400


def train(data, out, *extra) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rar_keras.train", "--config", "tiny", "--data", str(data), "--out", str(out),
               "--epochs", "1", "--val-fraction", "0", "--verbose", "2", *extra]
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)


def _load(path):
    from rar_keras.inference.keras_model import load_model

    return load_model(str(path))


def trainable(path) -> list:
    return [np.asarray(w) for w in _load(path).trainable_weights]


@pytest.mark.slow
def test_init_from_starts_from_the_given_weights_and_refuses_another_architecture(assets, tmp_path):
    first = train(assets / "menpo", tmp_path / "first", "--set", "batch_size=2")
    assert first.returncode == 0, first.stderr[-3000:]
    source = tmp_path / "first" / "model.keras"
    # A learning rate of 0 (with a warm-up) leaves the trainable weights where --init-from put them.
    again = train(assets / "menpo", tmp_path / "again", "--init-from", source,
                  "--set", "batch_size=2", "learning_rate=0.0", "warmup_fraction=0.5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"weights from {source}" in again.stdout
    for a, b in zip(trainable(source), trainable(tmp_path / "again" / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)

    other = train(assets / "menpo", tmp_path / "other", "--init-from", source,
                  "--set", "batch_size=2", "lstm_units=8")
    assert other.returncode == 2
    assert str(source) in other.stderr and "architecture differs" in other.stderr
    assert "refiner/" in other.stderr                 # the first weight that differs, by its path

    # The backbone alone carries over into a model whose refiner differs.
    partial = train(assets / "menpo", tmp_path / "partial", "--init-from", source, "--init-only", "backbone/",
                    "--set", "batch_size=2", "lstm_units=8", "learning_rate=0.0", "warmup_fraction=0.5")
    assert partial.returncode == 0, partial.stderr[-3000:]
    source_model = _load(source)
    partial_model = _load(tmp_path / "partial" / "model.keras")
    for a, b in zip(source_model.backbone.trainable_weights, partial_model.backbone.trainable_weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_from_a_missing_model_is_refused_before_training(assets, tmp_path):
    missing = tmp_path / "missing.keras"
    result = train(assets / "menpo", tmp_path / "out", "--init-from", missing)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "no such" in result.stderr
    assert not (tmp_path / "out").exists()
