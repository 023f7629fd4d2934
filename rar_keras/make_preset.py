"""`python -m rar_keras.make_preset MODEL FOLDER`: a trained model as a preset folder.

The folder (config.json + weights.npz by layer path) is what `rar_keras/presets/<name>/`
ships; `--init-mode` and `--set` record inference settings chosen on validation faces (the start
mode, the robust fit's residual scale, the number of refinement steps: whatever leaves the
weights as they are).

`--init-mode shape_fit` adds a shape model to the weights (`HeatmapShapeFit`): give the training
faces with `--shape-data DATA...`; the validation split that `rar_keras.train` holds out of them
(`--val-fraction`, `--seed`, as in training) is left out of it.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from datasets.errors import DataError
from datasets.schemes import get_scheme
from rar_keras.inference.keras_model import load_model
from rar_keras.inference.quality import QUALITY_FILE
from rar_keras.presets import save_preset
from rar_keras.models.config import SHAPE_FIT_WEIGHTS
from rar_keras.presets.loader import TFLITE_FILE
from rar_keras.utils.quiet import import_tensorflow


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.make_preset", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a trained .keras file or a preset")
    parser.add_argument("folder", help="the preset folder to write, e.g. rar_keras/presets/w300_mobile")
    parser.add_argument("--init-mode", help="start-shape mode stored in the preset's config")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="architecture fields that keep the weights, e.g. robust_scale=0.15 steps=2")
    parser.add_argument("--shape-data", nargs="+", default=None, metavar="DATA",
                        help="training datasets for the shape model of --init-mode shape_fit")
    parser.add_argument("--val-fraction", type=float, default=0.05,
                        help="--shape-data: the fraction held out for validation, as in training")
    parser.add_argument("--seed", type=int, default=0, help="--shape-data: the validation split's seed")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    args = parser.parse_args(argv)
    try:
        import_tensorflow(args.verbose)
        # TensorFlow loads only once the arguments are parsed.
        from rar_keras.models.config import START_MODES

        if args.init_mode and args.init_mode not in START_MODES:
            raise DataError(f"--init-mode {args.init_mode!r}: expected one of {START_MODES}")
        model = load_model(args.model)
        shapes = shape_landmarks(args.shape_data, args.val_fraction, args.seed) if args.shape_data else None
        changes = parse_settings(args.set) | ({"init_mode": args.init_mode} if args.init_mode else {})
        if changes or shapes is not None:
            model = with_settings(model, changes, shapes)
        folder = save_preset(model, args.folder)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {folder} (init mode {model.init_mode})")
    derived = [name for name in (TFLITE_FILE, QUALITY_FILE) if (folder / name).is_file()]
    if derived:
        print(f"{folder}: {' and '.join(derived)} belong to the weights it held before: make them again with "
              "python -m export and python -m tools.fit_quality (docs/PRESETS.md)", file=sys.stderr)
    return 0


def parse_settings(items) -> dict:
    """KEY=VALUE pairs, values parsed as JSON when they can be."""
    settings = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise DataError(f"--set {item!r}: expected KEY=VALUE")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


def shape_landmarks(paths, val_fraction: float, seed: int) -> np.ndarray:
    """The training faces' landmarks (N, L, 2) of `paths`, with their mirrors, less the validation
    split that training holds out."""
    from rar_keras.training.trainer import load_faces, split_validation

    train, _ = split_validation(load_faces(paths), val_fraction, seed)
    shapes = np.stack([np.asarray(record.landmarks, np.float32) for record in train])
    scheme = get_scheme(train[0].scheme)
    return np.concatenate([shapes, scheme.mirror_landmarks(shapes, 0.0)])


def with_settings(model, changes: dict, shapes=None):
    """A copy of `model` whose config has `changes`, with the same weights (a DataError if they no
    longer fit). A start by the heatmap shape fit gets its shape model from `shapes` (N, L, 2)
    training landmarks, or keeps `model`'s own."""
    try:
        config = model.config.replace(**changes)
    except (TypeError, ValueError) as error:
        raise DataError(f"--set: {error}") from None
    # TensorFlow is loaded by now (the model).
    from rar_keras.utils.weight_paths import assign_by_path, weights_by_path

    clone = type(model)(config)
    clone.build_for_inference()
    arrays = {path: weight.numpy() for path, weight in weights_by_path(model).items()}
    if clone.shape_fit is None or shapes is not None:
        arrays = {path: array for path, array in arrays.items() if not path.startswith(SHAPE_FIT_WEIGHTS)}
        assign_by_path(clone, arrays, "the trained model", select=lambda path: not path.startswith(SHAPE_FIT_WEIGHTS))
        if clone.shape_fit is not None:
            clone.fit_shape_model(shapes)
    elif any(path.startswith(SHAPE_FIT_WEIGHTS) for path in arrays):
        assign_by_path(clone, arrays, "the trained model")
    else:
        raise DataError("--init-mode shape_fit: the model holds no shape model yet; give its training faces "
                        "with --shape-data DATA...")
    return clone


if __name__ == "__main__":
    sys.exit(main())
