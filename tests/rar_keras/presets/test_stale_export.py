"""A preset retrained or repackaged after its export: its `model.tflite` holds the old weights or settings
and is never run."""

import json
import shutil

import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.inference.crop_models import current_litert_file, load_crop_model, uses_keras
from rar_keras.inference.keras_model import KerasCropModel
from rar_keras.presets import preset_folder
from rar_keras.presets.loader import CONFIG_FILE, TFLITE_FILE, WEIGHTS_FILE, read_preset_config

PRESET = "w300_fast"


def copy_preset(destination):
    for name in (CONFIG_FILE, WEIGHTS_FILE, TFLITE_FILE):
        shutil.copy(preset_folder(PRESET) / name, destination / name)
    return destination


def retrain(folder):
    """Changes one weight of the folder's weights.npz, as a retrained preset would."""
    with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored:
        arrays = dict(stored)
    name = next(key for key, value in arrays.items() if value.dtype == np.float16)
    arrays[name] = arrays[name] + np.float16(0.01)
    np.savez_compressed(folder / WEIGHTS_FILE, **arrays)


def test_a_copied_preset_runs_its_litert_file(tmp_path):
    folder = copy_preset(tmp_path)
    assert current_litert_file(folder)
    assert not uses_keras(str(folder))


def test_a_litert_file_of_other_weights_is_never_run(tmp_path):
    folder = copy_preset(tmp_path)
    retrain(folder)
    assert not current_litert_file(folder)
    assert uses_keras(str(folder))
    with pytest.raises(DataError, match=r"model\.tflite was exported from other weights.*export it again"):
        load_crop_model(str(folder), runtime="litert", argument="--model")
    with pytest.warns(UserWarning, match="running the preset in Keras"):
        model = load_crop_model(str(folder))
    assert isinstance(model, KerasCropModel)


def test_a_litert_file_of_other_settings_is_never_run(tmp_path):
    folder = copy_preset(tmp_path)
    document = read_preset_config(folder)
    document["config"]["config"]["steps"] += 1          # as `make_preset --set steps=...` would
    (folder / CONFIG_FILE).write_text(json.dumps(document, indent=2))
    assert not current_litert_file(folder)
    assert uses_keras(str(folder))
    with pytest.raises(DataError, match=r"model\.tflite was exported from other weights or settings.*config\.json"):
        load_crop_model(str(folder), runtime="litert", argument="--model")


def test_a_config_rewritten_with_the_same_settings_stays_current(tmp_path):
    folder = copy_preset(tmp_path)
    compact = json.dumps(read_preset_config(folder), separators=(",", ":"))
    (folder / CONFIG_FILE).write_text(compact + "\r\n")
    assert current_litert_file(folder)


def test_a_folder_without_a_litert_file_is_not_current(tmp_path):
    folder = copy_preset(tmp_path)
    (folder / TFLITE_FILE).unlink()
    assert not current_litert_file(folder)
    assert uses_keras(str(folder))
