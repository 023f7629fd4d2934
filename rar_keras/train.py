"""`python -m rar_keras.train`: train a RAR landmarker with `model.fit` under tf.distribute.

Example:
    python -m rar_keras.train --config w300_mobile --data ../shared/data/300w/afw \
        ../shared/data/300w/helen/trainset ../shared/data/300w/lfpw/trainset --out runs/w300 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

from datasets.errors import DataError
from rar_keras.config import RARConfig, get_config

# Each epoch shows every face this many times (with random flips: each face and about its mirror).
PASSES_PER_EPOCH = 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="w300_mobile", help="a named config or a .json file")
    parser.add_argument("--data", nargs="+", required=True, help="training datasets (folders or files)")
    parser.add_argument("--val-data", nargs="*", default=None, help="validation datasets (default: a split)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="held-out share of --data")
    parser.add_argument("--out", required=True, help="output folder (model, logs, backups)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config fields, e.g. --set steps=4 learning_rate=1e-3")
    parser.add_argument("--cpu-replicas", type=int, default=0,
                        help="split the CPU into N logical devices for MirroredStrategy (testing)")
    parser.add_argument("--deterministic", action="store_true",
                        help="use deterministic TensorFlow ops (same weights on every run; slower)")
    parser.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start from the weights of a preset or .keras file of the same architecture "
                             "(fine-tuning, or continuing a finished run with a new schedule)")
    parser.add_argument("--verbose", type=int, default=1, help="Keras progress: 1 bar, 2 line per epoch")
    return parser.parse_args(argv)


def apply_overrides(config: RARConfig, overrides: list[str]) -> RARConfig:
    """Applies KEY=VALUE overrides, values parsed as JSON when they can be."""
    values = config.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key not in values:
            raise DataError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(values)}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return RARConfig.from_dict(values)


def load_faces(paths):
    from datasets.loaders import load_records

    records = []
    for path in paths:
        records.extend(load_records(path))
    if not records:
        raise DataError(f"no faces found in {paths}")
    return records


def split_validation(records, fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    if fraction <= 0 or len(records) < 10:
        return records, []
    return train_test_split(records, test_size=fraction, random_state=seed)


def train(args: argparse.Namespace) -> pathlib.Path:
    from datasets.schemes import get_scheme

    # Everything that can be wrong with the user's input is checked before TensorFlow loads.
    config = apply_overrides(get_config(args.config), args.set)
    scheme = get_scheme(config.scheme)
    records = load_faces(args.data)
    if args.val_data:
        train_records, val_records = records, load_faces(args.val_data)
    else:
        train_records, val_records = split_validation(records, args.val_fraction, config.seed)
    for record in train_records:
        scheme.check(record.landmarks, record.path)
    if args.init_from:
        from rar_keras.presets import list_presets, names_a_model

        if not names_a_model(args.init_from):
            raise DataError(f"--init-from {args.init_from}: no such .keras file, preset folder or shipped "
                            f"preset (shipped: {', '.join(list_presets()) or 'none'})")
    if not 1 <= config.batch_size <= len(train_records):
        raise DataError(f"batch_size {config.batch_size}: must be between 1 and the number of training "
                        f"faces ({len(train_records)}); lower it with --set batch_size=N")

    import keras
    import tensorflow as tf

    from datasets.pipeline import cache_faces, eval_dataset, train_dataset
    from rar_keras import callbacks, distribute
    from rar_keras.model import RARLandmarker, crop_landmarks_bank

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    strategy = distribute.choose_strategy(args.cpu_replicas)
    keras.utils.set_random_seed(config.seed)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    print(f"faces: {len(train_records)} train, {len(val_records)} validation; "
          f"replicas: {strategy.num_replicas_in_sync}")
    train_cache = cache_faces(train_records, config.input_size, config.margin)
    steps_per_epoch = math.ceil(PASSES_PER_EPOCH * len(train_records) / config.batch_size)
    epochs = args.epochs
    if args.max_steps:
        steps_per_epoch = min(steps_per_epoch, args.max_steps)
        epochs = min(epochs, math.ceil(args.max_steps / steps_per_epoch))
    # A resumed run's input stream continues where the interrupted one stopped.
    backup_dir = distribute.backup_dir(out)
    initial_epoch = callbacks.resume_epoch(backup_dir)
    if initial_epoch:
        print(f"resuming from the backup in {backup_dir}: {initial_epoch} of {epochs} epochs done")
    train_data = train_dataset(train_cache, scheme, config.input_size, config.batch_size,
                               seed=config.seed, start_step=initial_epoch * steps_per_epoch)
    val_data = None
    if val_records:
        val_cache = cache_faces(val_records, config.input_size, config.margin)
        val_data = eval_dataset(val_cache, config.input_size, config.batch_size).map(
            lambda images, landmarks, matrix: (images, {"landmarks": landmarks}))

    source = None
    if args.init_from:
        from rar_keras.inference import load_model

        source = load_model(args.init_from)
    with strategy.scope():
        model = RARLandmarker(config)
        total_steps = epochs * steps_per_epoch
        warmup_steps = int(round(config.warmup_fraction * total_steps))
        # With a warm-up, CosineDecay climbs from `initial_learning_rate` to `warmup_target`.
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else config.learning_rate, total_steps - warmup_steps, alpha=0.02,
            warmup_target=config.learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                                       clipnorm=5.0))
        model.build_for_training()
        if source is not None:
            copy_weights(source, model, args.init_from)
            print(f"initialised from {args.init_from}")
    crop_shapes = crop_space_shapes(train_cache, scheme)
    bank = crop_landmarks_bank(model, crop_shapes, seed=config.seed)
    print(f"shape bank: {len(bank.shapes)} shapes, {bank.dropped} training shapes dropped by RANSAC")
    config.save(out / "config.json")

    fit_callbacks = [
        callbacks.StageScheduler(config.stages, epochs),
        keras.callbacks.BackupAndRestore(str(backup_dir), save_freq="epoch"),
        callbacks.ResumeState(backup_dir, initial_epoch),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
        # Every worker saves (see distribute.output_path); the chief's files are the results.
        callbacks.AtomicCheckpoint(distribute.output_path(out, "checkpoint.keras")),
    ]
    started = time.time()
    model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=val_data,
              callbacks=fit_callbacks, verbose=args.verbose)
    seconds = time.time() - started
    path = distribute.output_path(out, "model.keras")
    callbacks.save_atomically(model, path)
    print(f"trained {epochs} epochs x {steps_per_epoch} steps in {seconds:.0f} s "
          f"({epochs * steps_per_epoch * config.batch_size / max(seconds, 1e-9):.1f} crops/s); saved {path}")
    return path


def copy_weights(source, model, spec: str) -> None:
    """Copies the weights of `source` (loaded from `spec`) into `model`, which must have its architecture."""
    mine, theirs = model.weights, source.weights
    if len(mine) != len(theirs):
        raise DataError(f"--init-from {spec}: holds {len(theirs)} weights, the config builds a model of "
                        f"{len(mine)}: not the same architecture")
    for target, value in zip(mine, theirs):
        if tuple(target.shape) != tuple(value.shape):
            raise DataError(f"--init-from {spec}: {target.path} has shape {tuple(value.shape)}, the config "
                            f"expects {tuple(target.shape)}: not the same architecture")
        target.assign(value.numpy().astype(target.dtype))


def crop_space_shapes(cache, scheme):
    """Training landmarks in model-crop pixels, with their mirrors (the bank sees both)."""
    import numpy as np

    shapes = np.asarray(cache.crop_landmarks, np.float32)
    mirrored = shapes[:, scheme.flip_permutation].copy()
    size = cache.size
    mirrored[..., 0] = size - 1 - mirrored[..., 0]
    return np.concatenate([shapes, mirrored])


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except (DataError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
