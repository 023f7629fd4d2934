"""The training backup: what an interrupted run resumes from, committed by one atomic rename.

Keras's `BackupAndRestore` writes its weights file and then its epoch file, in place: a run killed
between the two, or in the middle of either, leaves a backup whose weights and epoch disagree (the
resumed run silently redoes an epoch from the wrong weights) or that cannot be read. Its weights
also leave out the state of the `SeedGenerator`s (the attention sampling of the refiner), so a
resumed run would draw other samples than an uninterrupted one.

`AtomicBackupAndRestore` keeps Keras's callback (when it saves, restores and deletes) and replaces
how it writes: each epoch's weights go to a new file named after the epoch, then one small JSON
file, written atomically, names that file, the epoch and the seed states. Until that rename the
previous backup stands whole; after it the new one does. Older weights files are removed only then.
"""

from __future__ import annotations

import json
import pathlib

import keras

from datasets.errors import DataError
from rar_keras.utils.atomic import write_atomically, write_bytes_atomically

BACKUP_METADATA = "training_metadata.json"
WEIGHTS_SUFFIX = ".weights.h5"         # Keras's `save_weights` requires this ending


def _weights_name(epoch: int) -> str:
    return f"epoch-{epoch:05d}{WEIGHTS_SUFFIX}"


def _read_metadata(backup_dir: pathlib.Path) -> dict | None:
    """The backup's metadata, None when there is no backup; a DataError names an unreadable one."""
    path = backup_dir / BACKUP_METADATA
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
        int(metadata["epoch"]), str(metadata["weights"]), list(metadata["seed_states"])
    except KeyError as error:
        raise DataError(f"{path}: not a backup of this trainer (no {error} field; expected epoch, weights "
                        f"and seed_states); delete {backup_dir} to train from the start") from None
    except (ValueError, TypeError) as error:
        raise DataError(f"{path}: unreadable training backup ({error}); delete {backup_dir} "
                        "to train from the start") from None
    if not (backup_dir / metadata["weights"]).is_file():
        raise DataError(f"{path}: names the weights file {metadata['weights']}, which is missing; "
                        f"delete {backup_dir} to train from the start")
    return metadata


def resume_epoch(backup_dir) -> int:
    """The epoch a run will resume from with the backup in `backup_dir` (0 when there is none).

    Read before `fit`, so that the input pipeline can start at the same place.
    """
    metadata = _read_metadata(pathlib.Path(backup_dir))
    return 0 if metadata is None else int(metadata["epoch"])


def _seed_states(model) -> list:
    """The state variable of every `keras.random.SeedGenerator` in `model`, in the model's order
    (their paths hold a process-wide counter, so they are matched by position, not by name)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore` at every epoch end, written atomically, with the seed states.

    Args:
        backup_dir: the folder of the backup (deleted when training completes).
        expected_epoch: the epoch the input pipeline was started at (`resume_epoch`); training
            stops with a DataError if the backup restores another.
    """

    def __init__(self, backup_dir, expected_epoch: int = 0):
        super().__init__(str(backup_dir), save_freq="epoch")
        self.folder, self.expected_epoch = pathlib.Path(backup_dir), int(expected_epoch)

    def _load_model(self):
        metadata = _read_metadata(self.folder)
        epoch = 0 if metadata is None else int(metadata["epoch"])
        if epoch != self.expected_epoch:
            raise DataError(f"{self.folder}: the backup is at epoch {epoch} but the run was set up to "
                            f"resume at {self.expected_epoch}; delete the folder to train from the start")
        if metadata is None:
            return
        weights = self.folder / metadata["weights"]
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)    # slots to load into
        try:
            self.model.load_weights(str(weights))
        except (OSError, ValueError) as error:
            raise DataError(f"{weights}: cannot restore the training backup ({error}); resume with the "
                            f"configuration that wrote it, or delete {self.folder} to train from the "
                            "start") from None
        variables = _seed_states(self.model)
        if len(variables) != len(metadata["seed_states"]):
            raise DataError(f"{self.folder / BACKUP_METADATA}: {len(metadata['seed_states'])} random-generator "
                            f"states for a model with {len(variables)}; delete {self.folder} to train from the start")
        for variable, state in zip(variables, metadata["seed_states"]):
            variable.assign(state)
        self.model._initial_epoch = epoch         # where Keras's `fit` reads the epoch to resume at

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        name = _weights_name(self._current_epoch)
        write_atomically(self.folder / name, self.model.save_weights)
        states = [[int(x) for x in variable.numpy()] for variable in _seed_states(self.model)]
        metadata = {"epoch": self._current_epoch, "weights": name, "seed_states": states}
        write_bytes_atomically(self.folder / BACKUP_METADATA, json.dumps(metadata).encode())   # the commit
        for stale in self.folder.glob(f"*{WEIGHTS_SUFFIX}"):
            if stale.name != name:
                stale.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        # The metadata goes first: a run killed while the folder is being removed starts afresh.
        (self.folder / BACKUP_METADATA).unlink(missing_ok=True)
        super().on_train_end(logs)
