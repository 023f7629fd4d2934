"""`python -m rar_keras.benchmark`: training images per second of named configs on this machine.

Runs real training steps (forward, losses, backward, AdamW update) on random
pixels with plausible landmark layouts; prints warm-up-free throughput.
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from datasets.schemes import get_scheme
from rar_keras.config import get_config
from rar_keras.model import RARLandmarker, crop_landmarks_bank


def synthetic_batch(config, batch_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    size, num = config.input_size, get_scheme(config.scheme).num_points
    base = rng.uniform(0.25 * size, 0.75 * size, size=(num, 2))
    shapes = (base + rng.normal(0, 0.02 * size, size=(max(batch_size, config.bank_size) * 2, num, 2)))
    images = rng.uniform(0, 255, size=(batch_size, size, size, 3)).astype(np.float32)
    return images, shapes.astype(np.float32)


def measure(name: str, steps: int, warmup: int, batch_size: int | None) -> float:
    config = get_config(name)
    batch = batch_size or config.batch_size
    images, shapes = synthetic_batch(config, batch)
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.build_for_training()
    crop_landmarks_bank(model, shapes)
    landmarks = shapes[:batch]
    for _ in range(warmup):
        model.train_on_batch(images, landmarks)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, landmarks)
    seconds = time.perf_counter() - started
    rate = steps * batch / seconds
    print(f"{name:14s} input {config.input_size:3d} px  batch {batch:3d}  params "
          f"{model.count_params():>10,d}  {rate:7.1f} train images/s")
    return rate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["w300_mobile", "w300_vgg19"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    for name in args.configs:
        measure(name, args.steps, args.warmup, args.batch_size)


if __name__ == "__main__":
    main()
