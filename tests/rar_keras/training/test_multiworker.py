"""Two training workers on 127.0.0.1 with MultiWorkerMirroredStrategy end with identical weights.

The workers find each other through TF_CONFIG, as on a real cluster; each gets its own
--out folder here (on a cluster they may share one: the chief writes OUT/model.keras,
worker i writes OUT/worker_i/model.keras, see rar_keras.training.distribute.output_path).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.paths import REPO
WORKERS = 2
MAX_STEPS = 3
RUN_TIMEOUT_S = 420
HOST = "127.0.0.1"


def free_ports(count: int) -> list:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def model_weights(path) -> list:
    from rar_keras.inference.keras_model import load_model

    return [np.asarray(w) for w in load_model(str(path)).get_weights()]


def run_workers(assets, tmp_path, outs) -> list:
    """Starts one training worker per --out folder on 127.0.0.1; (exit code, log text) of each."""
    cluster = {"worker": [f"{HOST}:{port}" for port in free_ports(len(outs))]}
    processes = []
    for index, out in enumerate(outs):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-m", "rar_keras.train", "--config", "tiny", "--data", str(assets / "menpo"),
                   "--out", str(out), "--max-steps", str(MAX_STEPS), "--val-fraction", "0",
                   "--set", "batch_size=2", "--verbose", "2"]
        log = open(tmp_path / f"worker_{index}.log", "w")
        processes.append((subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for process, _ in processes:
            process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    return [(process.returncode, (tmp_path / f"worker_{i}.log").read_text())
            for i, (process, _) in enumerate(processes)]


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(assets, tmp_path):
    outs = [tmp_path / f"out_{i}" for i in range(WORKERS)]
    results = run_workers(assets, tmp_path, outs)
    logs = [text for _, text in results]
    for code, text in results:
        assert code == 0, text[-4000:]
    assert all(f"replicas: {WORKERS}" in text for text in logs), logs[0][-2000:]
    assert "Traceback" not in logs[0] + logs[1]

    chief_model = outs[0] / "model.keras"
    worker_model = outs[1] / "worker_1" / "model.keras"
    assert chief_model.is_file() and worker_model.is_file()
    assert not (outs[1] / "model.keras").exists()          # only the chief writes the result
    chief, worker = model_weights(chief_model), model_weights(worker_model)
    assert len(chief) == len(worker)
    for a, b in zip(chief, worker):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # Training changed the weights (the comparison is not between two untouched models).
    config = json.loads((outs[0] / "config.json").read_text())
    assert config["training"]["batch_size"] == 2
    assert (outs[0] / "log.csv").read_text().count("\n") >= 2


@pytest.mark.slow
def test_workers_whose_backups_disagree_stop_with_a_clear_error(assets, tmp_path):
    """A job killed between two workers' backup commits: one worker at epoch 1, the other at 0."""
    outs = [tmp_path / f"out_{i}" for i in range(WORKERS)]
    chief_backup = outs[0] / "backup"
    chief_backup.mkdir(parents=True)
    (chief_backup / "epoch-00001.weights.h5").write_bytes(b"")       # checked before it is read
    (chief_backup / "training_metadata.json").write_text(
        json.dumps({"epoch": 1, "weights": "epoch-00001.weights.h5", "seed_states": []}))
    for code, text in run_workers(assets, tmp_path, outs):
        assert code == 2, text[-4000:]
        assert "backups are at different epochs" in text and "Traceback" not in text, text[-4000:]
    assert not (outs[0] / "model.keras").exists()
