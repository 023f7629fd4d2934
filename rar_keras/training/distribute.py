"""Chooses the tf.distribute strategy: multi-worker with TF_CONFIG, mirrored over GPUs, else default."""

from __future__ import annotations

import json
import os
import pathlib

import tensorflow as tf

from datasets.errors import DataError


def split_cpu(replicas: int) -> None:
    """Splits the CPU into `replicas` logical devices (for testing mirrored training without GPUs)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)


def choose_strategy(cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """`MultiWorkerMirroredStrategy` when TF_CONFIG names a cluster, `MirroredStrategy` when several
    GPUs (or `cpu_replicas` > 1 logical CPUs) are visible, the default strategy otherwise."""
    if os.environ.get("TF_CONFIG"):
        cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
        if sum(len(v) for v in cluster.values()) > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_replicas > 1:
        split_cpu(cpu_replicas)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """True on the worker that writes the outputs (always true without TF_CONFIG)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if not task:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def task_index() -> int:
    """This worker's index in TF_CONFIG (0 without one)."""
    return int(json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0))


def output_path(out, name: str):
    """Where this worker writes `name`: OUT/name on the chief, OUT/worker_<i>/name on the others.

    Every worker saves (saving may read variables with collective ops, so all must
    take part); only the chief's file is the result, the others are for checks.
    """
    out = pathlib.Path(out)
    return out / name if is_chief() else out / f"worker_{task_index()}" / name


# === Workarounds for keras-team/keras#20585 (MultiWorkerMirroredStrategy + Keras 3.15 `fit`) ===
# Keras 3.15's `model.fit` fails under MultiWorkerMirroredStrategy out of the box. It works here
# once three things hold, all decided in this block:
#   (1) the model and its optimizer are built inside `strategy.scope()` before `fit`
#       (`RARLandmarker.build_for_training`), and Keras's own symbolic build is skipped when
#       everything is built: it reduces the first distributed batch and fails converting a
#       `PerReplica` (`needs_symbolic_build`, called from `RARLandmarker._maybe_symbolic_build`);
#   (2) the train/test steps return their logs with a leading axis of 1: Keras's multi-worker
#       mean reduces along axis 0 and fails on scalars (`logs_for_reduction`);
#   (3) each worker's backup has its own directory (`backup_dir`): every worker saves, and a
#       shared folder would have them overwrite each other's metadata and delete each other's
#       weights files (`rar_keras.training.backup`).
# Remove this block once the upstream issue is fixed.

def in_multi_worker_mode(strategy=None) -> bool:
    """True under a MultiWorkerMirroredStrategy spanning several workers."""
    strategy = strategy or tf.distribute.get_strategy()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def needs_symbolic_build(model) -> bool:
    """(1) Whether Keras's symbolic build must run: not once the model and its optimizer are built."""
    optimizer = getattr(model, "optimizer", None)
    return not (model.built and optimizer is not None and optimizer.built)


def logs_for_reduction(logs: dict) -> dict:
    """(2) A step's scalar logs with a leading axis of 1 under multi-worker training, else as they are."""
    if not in_multi_worker_mode():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def check_same_resume_epoch(epoch: int, folder, strategy=None) -> None:
    """Under multi-worker training, a DataError on every worker unless all resume at one epoch.

    Each worker commits its own backup (`backup_dir`): a job killed between two workers' commits
    leaves them at different epochs, and they would then wait on each other's collectives for ever.
    n * sum(e^2) equals sum(e)^2 over the n workers' epochs e only when they are all equal.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not in_multi_worker_mode(strategy):
        return
    local = tf.constant([1.0, float(epoch), float(epoch) ** 2], tf.float64)

    @tf.function
    def totals():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, local))

    workers, total, squares = strategy.experimental_local_results(totals())[0].numpy()
    if workers * squares != total * total:
        raise DataError(f"{folder}: this worker resumes at epoch {epoch} but the {int(workers)} workers' "
                        f"backups are at different epochs (mean {total / workers:g}); delete every worker's "
                        "backup folder to train from the start")


def backup_dir(out):
    """(3) This worker's BackupAndRestore directory: OUT/backup on the chief, OUT/backup_worker_<i> else."""
    out = pathlib.Path(out)
    return out / "backup" if is_chief() else out / f"backup_worker_{task_index()}"
