"""`python -m tools.fit_occluder_mask`: trains a model's occluder mask head and writes the model as a preset.

    python -m tools.fit_occluder_mask --model w300_base \\
        --data $RAR_KERAS_DATA/300w/afw $RAR_KERAS_DATA/300w/helen/trainset $RAR_KERAS_DATA/300w/lfpw/trainset \\
        --out rar_keras/presets/w300_base --new-head

The written model runs twice on every crop: its first pass finds where occluders cover the face,
that region is painted grey, and the whole pipeline runs again on the painted crop
(`RARConfig.occluder_mask`, `rar_keras.layers.OccluderMaskHead`). Only the head is trained, on the
training faces cut around their landmarks with the model's margin, under the training pipeline's
occluders (`rar_keras.training.occluder_mask`); every other weight is kept. A model that has a
head already goes on training it, unless `--new-head` asks for a fresh one (of the config's default
width and dilations, or `--channels` / `--dilations`). The faces the training command held out for validation
(`--val-fraction`, `--seed`, as in `rar_keras.train`) are left out.

The folder then holds the weights and config; an older `model.tflite` or `quality.json` in it
belongs to the single-pass model: make them again (`python -m export`, `python -m tools.fit_quality`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from datasets.errors import DataError
from datasets.record import landmark_box
from rar_keras.models.config import RARConfig, TrainingConfig
from rar_keras.utils.quiet import import_tensorflow

DEFAULT_EPOCHS = 36
DEFAULT_VAL_FRACTION = 0.05            # rar_keras.train's --val-fraction default
DEFAULT_SEED = TrainingConfig().seed   # the training command's split seed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.fit_occluder_mask", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained preset or .keras file")
    parser.add_argument("--data", nargs="+", required=True, help="its training faces (any datasets the readers know)")
    parser.add_argument("--out", required=True, help="the preset folder to write")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="passes over the training faces")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--new-head", action="store_true",
                        help="train a fresh head in place of the model's own (a model without one always gets one)")
    parser.add_argument("--channels", type=int, default=RARConfig.occluder_mask_channels,
                        help="a fresh head's width")
    parser.add_argument("--dilations", type=int, nargs="+", default=list(RARConfig.occluder_mask_dilations),
                        help="a fresh head's dilation rates, one 3x3 convolution each")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help="held out of --data, as in training (0 keeps every face)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the training split's seed")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return parser.parse_args(argv)


def training_crops(paths, val_fraction: float, seed: int, config) -> np.ndarray:
    """(N, S, S, 3) uint8: the training faces of `paths` (the validation split left out), each cut
    around the box of its landmarks with the model's margin and input size."""
    from datasets.crops import crop_face
    from rar_keras.training.trainer import load_faces, split_validation

    train, _ = split_validation(load_faces(paths), val_fraction, seed)
    wrong = [record for record in train if np.shape(record.landmarks)[0] != np.shape(train[0].landmarks)[0]]
    if wrong:
        raise DataError(f"--data: {wrong[0].path} has {len(wrong[0].landmarks)} landmarks, "
                        f"{train[0].path} {len(train[0].landmarks)}")
    return np.stack([crop_face(record.image, landmark_box(record.landmarks), config.input_size, config.margin)[0]
                     for record in train]).astype(np.uint8)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.epochs < 1 or args.batch_size < 1:
            raise DataError(f"--epochs and --batch-size must be >= 1, got {args.epochs} and {args.batch_size}")
        if not 0.0 <= args.val_fraction < 1.0:
            raise DataError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
        import_tensorflow(args.verbose)
        from tqdm import tqdm

        from rar_keras.inference.keras_model import load_model
        from rar_keras.make_preset import warn_stale_files, with_settings
        from rar_keras.presets import save_preset
        from rar_keras.training.occluder_mask import train_occluder_mask

        model = load_model(args.model)
        if args.new_head or model.occluder_mask is None:
            head = {"occluder_mask": True, "occluder_mask_channels": args.channels,
                    "occluder_mask_dilations": args.dilations}
            model = with_settings(model, head, new_occluder_mask=True)
        crops = training_crops(args.data, args.val_fraction, args.seed, model.config)
        print(f"{len(crops)} training faces at {model.config.input_size} px")

        def progress(batches):
            return tqdm(batches, desc="occluder mask", unit="batch", file=sys.stderr, leave=False)

        history = train_occluder_mask(model, crops, args.epochs, args.batch_size, seed=args.seed, progress=progress)
        folder = save_preset(model, args.out)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"occluder mask loss by epoch: {', '.join(f'{loss:.4f}' for loss in history)}")
    print(f"wrote {folder} (occluder mask head trained {args.epochs} epochs)")
    warn_stale_files(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
