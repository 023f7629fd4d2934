"""`python -m rar_keras.make_preset MODEL FOLDER`: a trained model as a preset folder.

The folder (config.json + weights.npz by layer path) is what `rar_keras/presets/<name>/`
ships; `--init-mode` and `--set` record inference settings chosen on validation faces (the start
mode, the robust fit's residual scale, the number of refinement steps: whatever leaves the
weights as they are).

`--init-mode shape_fit` adds a shape model to the weights (`HeatmapShapeFit`), and
`--set shape_prior=true` the output's shape prior (`ShapePosterior`): give the training faces with
`--shape-data DATA...`; the validation split that `rar_keras.train` holds out of them
(`--val-fraction`, `--seed`, as in training) is left out of them.
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
from rar_keras.models.config import (OCCLUDER_MASK_WEIGHTS, SHAPE_FIT_MODE, SHAPE_FIT_WEIGHTS, SHAPE_MODEL_WEIGHTS,
                                     SHAPE_PRIOR_WEIGHTS, START_MODES)
from rar_keras.presets import save_preset
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
                        help="training datasets for the shape models of --init-mode shape_fit and of "
                             "shape_prior=true")
    parser.add_argument("--val-fraction", type=float, default=0.05,
                        help="--shape-data: the fraction held out for validation, as in training (0 for a run "
                             "given --val-data)")
    parser.add_argument("--seed", type=int, default=0, help="--shape-data: the validation split's seed")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    args = parser.parse_args(argv)
    try:
        if args.init_mode and args.init_mode not in START_MODES:
            raise DataError(f"--init-mode {args.init_mode!r}: expected one of {START_MODES}")
        import_tensorflow(args.verbose)
        model = load_model(args.model)
        changes = parse_settings(args.set) | ({"init_mode": args.init_mode} if args.init_mode else {})
        if (args.shape_data and changes.get("init_mode", model.init_mode) != SHAPE_FIT_MODE
                and not changes.get("shape_prior", model.config.shape_prior)):
            raise DataError(f"--shape-data fits the shape models of --init-mode {SHAPE_FIT_MODE} and of shape_prior="
                            f"true; the preset would have neither (it would start from "
                            f"{changes.get('init_mode', model.init_mode)!r})")
        shapes = (shape_landmarks(args.shape_data, args.val_fraction, args.seed, model.config.scheme)
                  if args.shape_data else None)
        if changes or shapes is not None:
            model = with_settings(model, changes, shapes)
        folder = save_preset(model, args.folder)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {folder} (init mode {model.init_mode})")
    warn_stale_files(folder)
    return 0


def warn_stale_files(folder) -> None:
    """Says on stderr which files of a just-written preset folder were made from what it held before
    (its `model.tflite`, `quality.json`), and how to make them again."""
    derived = [name for name in (TFLITE_FILE, QUALITY_FILE) if (folder / name).is_file()]
    if derived:
        print(f"{folder}: {' and '.join(derived)} belong to the weights it held before: make them again with "
              "python -m export and python -m tools.fit_quality (docs/PRESETS.md)", file=sys.stderr)


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


def shape_landmarks(paths, val_fraction: float, seed: int, scheme_name: str) -> np.ndarray:
    """The training faces' landmarks (N, L, 2) of `paths`, with their mirrors, less the validation
    split that training holds out (`val_fraction` 0 keeps every face, as for a run given
    `--val-data`); every face must be in the model's landmark scheme."""
    from rar_keras.training.trainer import load_faces, split_validation

    scheme = get_scheme(scheme_name)
    train, _ = split_validation(load_faces(paths), val_fraction, seed)
    wrong = [record for record in train if record.scheme not in ("", scheme.name)
             or np.shape(record.landmarks) != (scheme.num_points, 2)]
    if wrong:
        raise DataError(f"--shape-data: {wrong[0].path} has {len(wrong[0].landmarks)} landmarks of scheme "
                        f"{wrong[0].scheme!r}; the model's scheme {scheme.name!r} has {scheme.num_points}")
    shapes = np.stack([np.asarray(record.landmarks, np.float32) for record in train])
    return np.concatenate([shapes, scheme.mirror_landmarks(shapes, 0.0)])


def with_settings(model, changes: dict, shapes=None, new_occluder_mask: bool = False):
    """A copy of `model` whose config has `changes`, with the same weights (a DataError if they no
    longer fit). A start by the heatmap shape fit and a shape prior get their shape models from
    `shapes` (N, L, 2) training landmarks (a DataError when too few), or keep `model`'s own. An
    occluder mask head is kept when `model` has one; a copy that asks for one `model` lacks is
    refused unless `new_occluder_mask`, which gives the copy a fresh, untrained head (for
    `tools.fit_occluder_mask`) in place of any head `model` has."""
    try:
        config = model.config.replace(**changes)
    except (TypeError, ValueError) as error:
        raise DataError(f"--set: {error}") from None
    # TensorFlow is loaded by now (the model).
    from rar_keras.utils.weight_paths import assign_by_path, weights_by_path

    clone = type(model)(config)
    clone.build_for_inference()
    arrays = {path: weight.numpy() for path, weight in weights_by_path(model).items()}
    has_head = any(path.startswith(OCCLUDER_MASK_WEIGHTS) for path in arrays)
    if clone.occluder_mask is not None and not has_head and not new_occluder_mask:
        raise DataError("occluder_mask=true: the model holds no trained occluder mask head; train one with "
                        "python -m tools.fit_occluder_mask")
    copy_head = clone.occluder_mask is not None and has_head and not new_occluder_mask

    shape_models = {SHAPE_FIT_WEIGHTS: (clone.shape_fit, "--init-mode shape_fit"),
                    SHAPE_PRIOR_WEIGHTS: (clone.shape_posterior, "shape_prior=true")}
    if shapes is None:
        for prefix, (layer, setting) in shape_models.items():
            if layer is not None and not any(path.startswith(prefix) for path in arrays):
                raise DataError(f"{setting}: the model holds no shape model for it yet; give its training faces "
                                f"with --shape-data DATA...")

    held = tuple(prefix for prefix, (layer, _) in shape_models.items() if layer is not None)

    def kept(path: str) -> bool:
        if path.startswith(SHAPE_MODEL_WEIGHTS):       # fitted from `shapes`, or the model's own
            return shapes is None and path.startswith(held)
        return copy_head or not path.startswith(OCCLUDER_MASK_WEIGHTS)

    assign_by_path(clone, arrays, "the trained model", select=kept)
    if shapes is not None:
        try:
            clone.fit_shape_model(shapes)
        except ValueError as error:     # too few faces for a shape model
            raise DataError(f"--shape-data: {len(shapes)} training shapes: {error}") from None
    return clone


if __name__ == "__main__":
    sys.exit(main())
