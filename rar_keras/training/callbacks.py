"""Training callbacks: staged training and atomic model checkpoints."""

from __future__ import annotations

import json
import pathlib

import keras

from datasets.errors import DataError
from rar_keras.utils.atomic import write_atomically, write_bytes_atomically


def stage_for_epoch(stages, epochs: int, epoch: int) -> str:
    """The stage in force at `epoch` when `stages` ((name, fraction), ...) share `epochs` epochs."""
    total = sum(fraction for _, fraction in stages)
    boundary = 0.0
    for name, fraction in stages:
        boundary += fraction / total * epochs
        if epoch < round(boundary):
            return name
    return stages[-1][0]


class StageScheduler(keras.callbacks.Callback):
    """Switches the model's training stage at epoch boundaries and retraces its train step.

    Args:
        stages: ((stage name, fraction of epochs), ...) from the config.
        epochs: total epochs of the run.
    """

    def __init__(self, stages, epochs: int):
        super().__init__()
        self.stages, self.epochs = stages, epochs

    def on_epoch_begin(self, epoch, logs=None):
        stage = stage_for_epoch(self.stages, self.epochs, epoch)
        if stage != self.model.stage:
            self.model.set_stage(stage)
            self.model.make_train_function(force=True)
            print(f"\nstage: {stage}")


def save_atomically(model: keras.Model, path) -> None:
    """Saves a `.keras` file atomically (see `rar_keras.utils.atomic`)."""
    write_atomically(path, model.save)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Writes the model to `path` at the end of every epoch, atomically.

    Args:
        path: the `.keras` file to write.
        enabled: False on non-chief workers.
    """

    def __init__(self, path, enabled: bool = True):
        super().__init__()
        self.path, self.enabled = path, enabled

    def on_epoch_end(self, epoch, logs=None):
        if self.enabled:
            save_atomically(self.model, self.path)


# Keras's BackupAndRestore writes these two files in its directory (keras/src/callbacks/backup_and_restore.py).
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"
SEED_STATE_FILE = "seed_generators.json"


def resume_epoch(backup_dir) -> int:
    """The epoch `keras.callbacks.BackupAndRestore` will resume from in `backup_dir` (0 when none).

    Read before `fit`, so that the input pipeline can start at the same place.
    """
    backup_dir = pathlib.Path(backup_dir)
    weights, metadata = backup_dir / BACKUP_WEIGHTS, backup_dir / BACKUP_METADATA
    if not (weights.is_file() and metadata.is_file()):
        return 0
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{metadata}: unreadable training backup ({error}); delete {backup_dir} "
                        "to train from the start") from None


def _seed_states(model) -> dict:
    """{variable path: variable} for the state of every `keras.random.SeedGenerator` in `model`."""
    return {v.path: v for v in model.variables if v.path.endswith("seed_generator_state")}


class ResumeState(keras.callbacks.Callback):
    """What `BackupAndRestore` does not restore, and a check that it resumed where expected.

    Keras's weights files leave out the state of `SeedGenerator`s (the attention
    sampling of the refiner): without it a resumed run draws other samples than
    an uninterrupted one. This callback saves those states beside the backup at
    every epoch end and puts them back when training resumes. Place it right
    after the `BackupAndRestore` callback.

    Args:
        backup_dir: the `BackupAndRestore` directory.
        expected_epoch: the epoch the input pipeline was started at (`resume_epoch`).
    """

    def __init__(self, backup_dir, expected_epoch: int = 0):
        super().__init__()
        self.backup_dir, self.expected_epoch = pathlib.Path(backup_dir), int(expected_epoch)

    def on_train_begin(self, logs=None):
        restored = int(getattr(self.model, "_initial_epoch", None) or 0)
        if restored != self.expected_epoch:
            raise DataError(f"{self.backup_dir}: the backup resumed at epoch {restored} but its metadata "
                            f"said {self.expected_epoch}; delete the folder to train from the start")
        path = self.backup_dir / SEED_STATE_FILE
        if not restored or not path.is_file():
            return
        saved = json.loads(path.read_text())
        if saved.get("epoch") != restored:
            print(f"warning: {path} is from epoch {saved.get('epoch')}, not {restored}: random streams "
                  "restart (the run will not match an uninterrupted one exactly)")
            return
        for name, variable in _seed_states(self.model).items():
            if name in saved["states"]:
                variable.assign(saved["states"][name])

    def on_epoch_end(self, epoch, logs=None):
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        states = {name: [int(x) for x in variable.numpy()] for name, variable in _seed_states(self.model).items()}
        write_bytes_atomically(self.backup_dir / SEED_STATE_FILE,
                               json.dumps({"epoch": epoch + 1, "states": states}).encode())
