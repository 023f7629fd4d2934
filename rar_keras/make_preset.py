"""`python -m rar_keras.make_preset MODEL FOLDER`: a trained model as a preset folder.

The folder (config.json + weights.npz by layer path) is what `rar_keras/presets/<name>/`
ships; `--init-mode` records the start-shape mode chosen on validation faces.
"""

from __future__ import annotations

import argparse
import sys

from datasets.errors import DataError
from rar_keras.inference.keras_model import load_model
from rar_keras.presets import save_preset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.make_preset", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a trained .keras file or a preset")
    parser.add_argument("folder", help="the preset folder to write, e.g. rar_keras/presets/w300_mobile")
    parser.add_argument("--init-mode", help="start-shape mode stored in the preset's config")
    args = parser.parse_args(argv)
    try:
        # TensorFlow loads only once the arguments are parsed.
        from rar_keras.layers.robust_init import INIT_MODES

        model = load_model(args.model)
        if args.init_mode:
            if args.init_mode not in INIT_MODES:
                raise DataError(f"--init-mode {args.init_mode!r}: expected one of {INIT_MODES}")
            model.init_mode = args.init_mode
            model.config = model.config.replace(init_mode=args.init_mode)
        folder = save_preset(model, args.folder)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {folder} (init mode {model.init_mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
