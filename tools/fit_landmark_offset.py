"""`python -m tools.fit_landmark_offset`: measures a model's landmark offset on its training faces.

    python -m tools.fit_landmark_offset --model rar_keras/presets/w300_fast \\
        --data $RAR_KERAS_DATA/300w/afw $RAR_KERAS_DATA/300w/helen/trainset $RAR_KERAS_DATA/300w/lfpw/trainset \\
        --write

A model trained on mirrored crops learns the mirror-symmetric position of each point. Where the
annotations sit a fraction of a pixel to one side of the feature they name, mirroring moves them
to the other side, the two cancel in training, and every prediction ends up off by that fraction
on unmirrored faces. This command predicts the faces with the ground-truth box, takes the mean
signed error in units of the box's longer side (the model's own offset taken off first, so that a
second run gives the same value), and prints it; `--write` stores it as the preset's
`landmark_offset`, which the model then adds to every output (docs/LANDMARK_OFFSET.md).

By default the faces the training command held out for validation are left out, so that
validation figures stay honest: the split is `rar_keras.train`'s (`--val-fraction` of the faces,
its training seed), and it is the same only for the same `--data` folders in the same order. Fit
on training faces, never on a test set.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from datasets.errors import DataError
from datasets.record import landmark_box
from rar_keras.models.config import TrainingConfig
from rar_keras.utils.quiet import import_tensorflow

DEFAULT_VAL_FRACTION = 0.05            # rar_keras.train's --val-fraction default (a test checks it)
DEFAULT_SEED = TrainingConfig().seed   # the training command's split seed unless --set seed=...
BATCH = 32


def residuals(landmarker, records, progress=True) -> np.ndarray:
    """(N, L, 2) signed errors of the predictions, in units of each face's ground-truth box side.

    Args:
        landmarker: a `CropLandmarker` (its `predict(images, boxes)` gives image pixels).
        records: faces with landmarks; each is cropped around the box of its own landmarks.
        progress: show a tqdm progress bar.
    """
    from tqdm import tqdm

    out = []
    for start in tqdm(range(0, len(records), BATCH), desc="predicting", unit="batch", disable=not progress):
        chunk = records[start:start + BATCH]
        truth = np.stack([r.landmarks for r in chunk]).astype(np.float64)
        boxes = np.stack([landmark_box(r.landmarks) for r in chunk])
        predicted = landmarker.predict([r.image for r in chunk], boxes).astype(np.float64)
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        out.append((predicted - truth) / side[:, None, None])
    return np.concatenate(out)


def fitted_offset(errors: np.ndarray, current=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """(offset (2,), its standard error (2,)): the current offset less the mean signed error per face.

    Args:
        errors: (N, L, 2) signed errors of a model's outputs, in box sides.
        current: the offset those outputs already include.
    """
    per_face = errors.mean(axis=1)
    offset = np.asarray(current, np.float64) - per_face.mean(axis=0)
    spread = per_face.std(axis=0, ddof=1) / np.sqrt(len(per_face)) if len(per_face) > 1 else np.zeros(2)
    return offset, spread


def write_offset(folder, offset) -> None:
    """Sets `landmark_offset` in a preset folder's config.json (atomically; weights untouched).

    Args:
        folder: the preset folder (or a shipped preset's name).
        offset: (x, y) in units of the face box's longer side.

    Raises:
        DataError: not a preset folder or an unreadable config; ValueError: an offset out of range.
    """
    from rar_keras.models.config import RARConfig
    from rar_keras.presets.loader import preset_folder, read_preset_config, write_preset_config

    stored = read_preset_config(folder)
    architecture = dict(stored["config"]["config"], landmark_offset=[round(float(v), 6) for v in offset])
    RARConfig.from_dict(architecture)      # a ValueError here names what is wrong
    stored["config"]["config"] = architecture
    write_preset_config(preset_folder(folder), stored)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fit_landmark_offset", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a preset (name or folder) or a trained .keras file")
    parser.add_argument("--data", nargs="+", required=True,
                        help="the model's training faces: the training command's --data, in its order")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help="share of --data held out as the training command did (0 keeps every face)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the training command's split seed")
    parser.add_argument("--write", action="store_true", help="store the offset in the preset's config.json")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        print(f"error: --val-fraction must be in [0, 1), got {args.val_fraction}", file=sys.stderr)
        return 2
    try:
        import_tensorflow(args.verbose)
        from rar_keras.inference.crop_landmarker import CropLandmarker
        from rar_keras.inference.keras_model import KerasCropModel, load_model
        from rar_keras.inference.model_spec import PRESET, resolve_model_spec
        from rar_keras.training.trainer import load_faces, split_validation

        spec = resolve_model_spec(args.model, argument="--model")
        if args.write and spec.kind != PRESET:
            raise DataError(f"--write needs a preset folder; --model {args.model} is a .{spec.kind} file "
                            "(run without --write: it prints the --set that python -m rar_keras.make_preset "
                            "takes)")
        model = load_model(args.model, "--model")
        records, held_out = split_validation(load_faces(args.data), args.val_fraction, args.seed)
        for record in records:
            model.scheme.check(record.landmarks, record.path)
        current = model.config.landmark_offset
        errors = residuals(CropLandmarker(KerasCropModel(model)), records)
        offset, spread = fitted_offset(errors, current)
        if args.write:
            write_offset(spec.path, offset)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(records)} faces ({len(held_out)} held out): landmark offset x {offset[0]:+.5f} "
          f"(+-{spread[0]:.5f}), y {offset[1]:+.5f} (+-{spread[1]:.5f}) of the box side; "
          f"the model had {list(current)}")
    value = f"[{offset[0]:.6f},{offset[1]:.6f}]"
    if args.write:
        from rar_keras.presets.loader import TFLITE_FILE

        stale = (spec.path / TFLITE_FILE).is_file()
        print(f"wrote landmark_offset={value} into {spec.path}"
              + (f"; export its {TFLITE_FILE} again (python -m export, docs/PRESETS.md)" if stale else ""))
    else:
        print(f"to store it: python -m rar_keras.make_preset MODEL FOLDER --set landmark_offset={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
