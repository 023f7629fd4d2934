"""`python -m rar_keras.train`: train a RAR landmarker with `model.fit` under tf.distribute.

Example:
    python -m rar_keras.train --config w300_mobile --data $RAR_KERAS_DATA/300w/afw \
        $RAR_KERAS_DATA/300w/helen/trainset $RAR_KERAS_DATA/300w/lfpw/trainset --out runs/w300 --epochs 30
"""

from __future__ import annotations

import argparse
import sys

from datasets.errors import DataError
from rar_keras.models.config import EXPERIMENTS, get_experiment

EXIT_USER_ERROR = 2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.train", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", default="w300_mobile",
                        help=f"a named config ({', '.join(sorted(EXPERIMENTS))}) or a .json file")
    parser.add_argument("--data", nargs="+", required=True, help="training datasets (folders or files)")
    parser.add_argument("--val-data", nargs="*", default=None, help="validation datasets (default: a split)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="held-out share of --data")
    parser.add_argument("--out", required=True, help="output folder (model, logs, backups)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="run exactly this many steps (instead of --epochs)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config fields (model, training or augmentation), e.g. "
                             "--set steps=4 learning_rate=1e-3 rotation=20")
    parser.add_argument("--cpu-replicas", type=int, default=0,
                        help="split the CPU into N logical devices for MirroredStrategy (testing)")
    parser.add_argument("--deterministic", action="store_true",
                        help="use deterministic TensorFlow ops (same weights on every run; slower)")
    parser.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start from the weights of a preset or .keras file (fine-tuning, or "
                             "continuing a finished run with a new schedule)")
    parser.add_argument("--init-only", nargs="*", default=[], metavar="PREFIX",
                        help="with --init-from, copy only the weights under these layer paths, "
                             "e.g. backbone/ (the architectures may then differ elsewhere)")
    parser.add_argument("--teacher", nargs="+", default=[], metavar="MODEL",
                        help="distil trained presets or .keras files of the same scheme (any input size): "
                             "the model also learns to match their heatmaps (several: the mean of their "
                             "logits), weighted by distill_weight")
    parser.add_argument("--verbose", type=int, default=1,
                        help="Keras progress: 0 none, 1 bar, 2 a line per epoch; 3 also TensorFlow's log lines")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        # The trainer checks the inputs before it loads TensorFlow.
        from rar_keras.training.trainer import TrainingRun, train

        try:
            experiment = get_experiment(args.config).override(args.set)
        except ValueError as error:
            raise DataError(str(error)) from None
        train(TrainingRun(experiment=experiment, data=args.data, out=args.out, epochs=args.epochs,
                          val_data=args.val_data, val_fraction=args.val_fraction, max_steps=args.max_steps,
                          cpu_replicas=args.cpu_replicas, deterministic=args.deterministic,
                          init_from=args.init_from, init_only=args.init_only, teacher=args.teacher,
                          verbose=args.verbose))
    except (DataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
