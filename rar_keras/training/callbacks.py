"""Training callbacks: staged training and atomic model checkpoints."""

from __future__ import annotations

import keras

from rar_keras.utils.atomic import write_atomically


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
