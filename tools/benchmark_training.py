"""`python -m tools.benchmark_training`: training images per second of named configs on this machine.

Runs real training steps (forward, losses, backward, AdamW update) on random
pixels with plausible landmark layouts; prints warm-up-free throughput.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from datasets.schemes import get_scheme
from rar_keras.models.config import get_experiment
from rar_keras.models.rar_landmarker import RARLandmarker


def synthetic_batch(config, batch_size: int, seed: int = 0, bank_size: int = 32):
    rng = np.random.default_rng(seed)
    size, num = config.input_size, get_scheme(config.scheme).num_points
    base = rng.uniform(0.25 * size, 0.75 * size, size=(num, 2))
    shapes = (base + rng.normal(0, 0.02 * size, size=(max(batch_size, bank_size) * 2, num, 2)))
    images = rng.uniform(0, 255, size=(batch_size, size, size, 3)).astype(np.float32)
    return images, shapes.astype(np.float32)


def measure(name: str, steps: int, warmup: int, batch_size: int | None, stage: str = "joint") -> float:
    experiment = get_experiment(name)
    config = experiment.model
    batch = batch_size or experiment.training.batch_size
    images, shapes = synthetic_batch(config, batch, bank_size=config.bank_size)
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), training=experiment.training)
    model.build_for_training()
    model.fit_shape_bank(shapes)
    model.set_stage(stage)
    landmarks = shapes[:batch]
    for _ in range(warmup):
        model.train_on_batch(images, landmarks)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, landmarks)
    seconds = time.perf_counter() - started
    rate = steps * batch / seconds
    print(f"{name:14s} {stage:8s} input {config.input_size:3d} px  batch {batch:3d}  params "
          f"{model.count_params():>10,d}  {rate:7.1f} train images/s")
    return rate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark_training", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["w300_mobile", "w300_mobilenet"])
    parser.add_argument("--stage", default="joint", help="training stage: detector, refiner or joint")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    for name in args.configs:
        measure(name, args.steps, args.warmup, args.batch_size, args.stage)


if __name__ == "__main__":
    main()
