"""Chooses the tf.distribute strategy: multi-worker with TF_CONFIG, mirrored over GPUs, else default."""

from __future__ import annotations

import json
import os

import tensorflow as tf


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
