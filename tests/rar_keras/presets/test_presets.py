"""Preset folders: float16 weights round-trip into a float32 model; bad folders are refused clearly."""

import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.models.config import EXPERIMENTS
from rar_keras.inference.keras_model import load_model
from rar_keras.models.rar_landmarker import RARLandmarker
from rar_keras.presets import list_presets, read_preset_config, save_preset


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(16, 48, size=(68, 2))
    model = RARLandmarker(EXPERIMENTS["tiny"].model)
    model(np.zeros((1, 64, 64, 3), np.float32))
    model.fit_shape_bank((base + rng.normal(0, 2, size=(12, 68, 2))).astype(np.float32))
    return model


def test_preset_round_trip_close_to_float32(tmp_path):
    model = _tiny()
    folder = save_preset(model, tmp_path / "tiny")
    restored = load_model(str(folder))
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(restored(images)["landmarks"].numpy(), model(images)["landmarks"].numpy(),
                               atol=0.05)
    np.testing.assert_array_equal(restored.initializer.bank.numpy(), model.initializer.bank.numpy())


def _rewrite(folder, change):
    with np.load(folder / "weights.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    change(arrays)
    np.savez(folder / "weights.npz", **arrays)


def test_weights_are_stored_by_layer_path_with_the_bank_in_float32(tmp_path):
    model = _tiny()
    folder = save_preset(model, tmp_path / "tiny")
    with np.load(folder / "weights.npz") as stored:
        assert stored["initializer/bank"].dtype == np.float32
        assert stored["refiner/attention_cell/kernel"].shape == stored["refiner/refine_cell/kernel"].shape
    assert read_preset_config(folder)["class_name"] == "RARLandmarker"


def test_same_shaped_cells_cannot_swap(tmp_path):
    model = _tiny()
    model.refiner.attention_cell.kernel.assign(np.ones_like(model.refiner.attention_cell.kernel))
    folder = save_preset(model, tmp_path / "tiny")
    restored = load_model(str(folder))
    np.testing.assert_array_equal(restored.refiner.attention_cell.kernel.numpy(), 1.0)
    assert not np.all(restored.refiner.refine_cell.kernel.numpy() == 1.0)


@pytest.mark.parametrize("change, message", [
    (lambda arrays: arrays.pop("backbone/stem/0/kernel"), "no value for weight backbone/stem/0/kernel"),
    (lambda arrays: arrays.update({"refiner/extra/kernel": np.zeros(3)}), "holds weight refiner/extra/kernel"),
    (lambda arrays: arrays.update({"refiner/update/bias": np.zeros(3)}),
     r"weight refiner/update/bias has shape \(3,\), the model expects"),
], ids=["missing", "extra", "mis-shaped"])
def test_preset_with_wrong_weights_is_refused_naming_the_weight(tmp_path, change, message):
    folder = save_preset(_tiny(), tmp_path / "tiny")
    _rewrite(folder, change)
    with pytest.raises(DataError, match=message):
        load_model(str(folder))


def test_unknown_preset_names_the_shipped_ones():
    with pytest.raises(DataError, match="shipped presets: .*w300_mobile"):
        RARLandmarker.from_preset("no-such-preset")
    assert "w300_mobile" in list_presets()
