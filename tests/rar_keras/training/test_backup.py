"""The training backup: one atomic commit per epoch, weights, optimizer and seed states restored
together, clear errors on a broken backup."""

import json

import keras
import numpy as np
import pytest

from datasets.errors import DataError
from rar_keras.models.config import EXPERIMENTS
from rar_keras.models.rar_landmarker import RARLandmarker
from rar_keras.training import backup


def _model(seed: int) -> RARLandmarker:
    keras.utils.set_random_seed(seed)
    model = RARLandmarker(EXPERIMENTS["tiny"].model)
    model.compile(optimizer=keras.optimizers.Adam())
    model.build_for_training()
    return model


def _state(model) -> list:
    """Every variable of the model and its optimizer, seed states included."""
    return [np.array(v) for v in model.variables] + [np.array(v) for v in model.optimizer.variables]


def _scramble(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for variable in list(model.variables) + list(model.optimizer.variables):
        value = np.asarray(variable)
        variable.assign(rng.integers(0, 1000, value.shape).astype(value.dtype))


def _backup_at_epoch_end(model, folder, epoch: int) -> backup.AtomicBackupAndRestore:
    callback = backup.AtomicBackupAndRestore(folder, expected_epoch=0)
    callback.set_model(model)
    callback.on_epoch_end(epoch)
    return callback


def _restore(folder, expected_epoch: int, seed: int = 99) -> RARLandmarker:
    model = _model(seed)
    callback = backup.AtomicBackupAndRestore(folder, expected_epoch)
    callback.set_model(model)
    callback.on_train_begin()
    assert model._initial_epoch == expected_epoch
    return model


def test_a_backup_restores_every_variable_and_keeps_one_weights_file(tmp_path):
    model = _model(0)
    _scramble(model, 1)          # optimizer slots and seed states that differ from a fresh model's
    _backup_at_epoch_end(model, tmp_path, epoch=0)
    _scramble(model, 2)
    _backup_at_epoch_end(model, tmp_path, epoch=1)
    assert backup.resume_epoch(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-00002.weights.h5", backup.BACKUP_METADATA]

    restored = _restore(tmp_path, expected_epoch=2)
    for a, b in zip(_state(model), _state(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any("seed_generator_state" in v.path for v in restored.variables)

    callback = backup.AtomicBackupAndRestore(tmp_path, expected_epoch=2)
    callback.set_model(restored)
    callback.on_train_end()
    assert not tmp_path.exists()              # a completed run leaves no backup


def test_a_run_killed_before_the_commit_resumes_from_the_previous_epoch_whole(tmp_path, monkeypatch):
    model = _model(0)
    _scramble(model, 1)
    _backup_at_epoch_end(model, tmp_path, epoch=0)
    epoch_one = _state(model)

    _scramble(model, 2)

    def killed(path, data):
        raise KeyboardInterrupt      # dies after writing the new weights, before the metadata
    monkeypatch.setattr(backup, "write_bytes_atomically", killed)
    with pytest.raises(KeyboardInterrupt):
        _backup_at_epoch_end(model, tmp_path, epoch=1)
    monkeypatch.undo()
    assert (tmp_path / "epoch-00002.weights.h5").is_file()      # written, never committed
    assert backup.resume_epoch(tmp_path) == 1

    restored = _restore(tmp_path, expected_epoch=1)
    for a, b in zip(epoch_one, _state(restored), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_broken_backup_is_refused_with_the_file_named(tmp_path):
    assert backup.resume_epoch(tmp_path) == 0
    _backup_at_epoch_end(_model(0), tmp_path, epoch=2)
    with pytest.raises(DataError, match="epoch 3 but the run was set up to resume at 1"):
        _restore(tmp_path, expected_epoch=1)

    metadata = tmp_path / backup.BACKUP_METADATA
    saved = json.loads(metadata.read_text())
    metadata.write_text(json.dumps({**saved, "weights": "epoch-00009.weights.h5"}))
    with pytest.raises(DataError, match="epoch-00009.weights.h5, which is missing"):
        backup.resume_epoch(tmp_path)

    metadata.write_text(json.dumps({**saved, "seed_states": saved["seed_states"][:-1]}))
    with pytest.raises(DataError, match="random-generator states for a model with"):
        _restore(tmp_path, expected_epoch=3)

    metadata.write_text(json.dumps({"epoch": 3, "batch": 0}))       # Keras's own backup format
    with pytest.raises(DataError, match="not a backup of this trainer"):
        backup.resume_epoch(tmp_path)

    metadata.write_text('{"epoch": 3, "weig')
    with pytest.raises(DataError) as info:
        backup.resume_epoch(tmp_path)
    assert str(metadata) in str(info.value) and "unreadable training backup" in str(info.value)

    metadata.write_text(json.dumps(saved))
    (tmp_path / saved["weights"]).write_bytes(b"not an HDF5 file")
    with pytest.raises(DataError, match="cannot restore the training backup"):
        _restore(tmp_path, expected_epoch=3)
