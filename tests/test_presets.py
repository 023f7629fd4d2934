"""Preset folders: float16 weights round-trip into a float32 model; bad folders are refused clearly."""

import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.config import CONFIGS
from rar_keras.inference import load_model
from rar_keras.model import RARLandmarker, crop_landmarks_bank
from rar_keras.presets import list_presets, save_preset


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(16, 48, size=(68, 2))
    model = RARLandmarker(CONFIGS["tiny"])
    model(np.zeros((1, 64, 64, 3), np.float32))
    crop_landmarks_bank(model, (base + rng.normal(0, 2, size=(12, 68, 2))).astype(np.float32))
    return model


def test_preset_round_trip_close_to_float32(tmp_path):
    model = _tiny()
    folder = save_preset(model, tmp_path / "tiny")
    restored = load_model(str(folder))
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(restored(images)["landmarks"].numpy(), model(images)["landmarks"].numpy(),
                               atol=0.05)
    np.testing.assert_array_equal(restored.initializer.bank.numpy(), model.initializer.bank.numpy())


def test_preset_with_missing_weights_is_refused(tmp_path):
    folder = save_preset(_tiny(), tmp_path / "tiny")
    with np.load(folder / "weights.npz") as stored:
        kept = {k: stored[k] for k in list(stored.files)[1:]}
    np.savez(folder / "weights.npz", **kept)
    with pytest.raises(DataError, match="weights missing"):
        load_model(str(folder))


def test_unknown_preset_names_the_shipped_ones():
    with pytest.raises(DataError, match="shipped presets"):
        RARLandmarker.from_preset("no-such-preset")
    assert isinstance(list_presets(), list)
