"""Shipped pretrained models: `rar_keras/presets/<name>/` holds `config.json` and `weights.npz`.

Weights are stored in float16 (half the size of a `.keras` file, which also
carries the optimizer state) and loaded into a float32 model; the small
non-trainable arrays (shape bank, mean shape, RANSAC pairs, batch-norm
statistics) keep their own dtype. Loading runs no code from the files:
`config.json` is plain JSON and `weights.npz` is read with `allow_pickle=False`.
"""

from __future__ import annotations

import pathlib

import numpy as np

from datasets.errors import DataError
from rar_keras.atomic import write_atomically, write_bytes_atomically

PRESETS_DIR = pathlib.Path(__file__).resolve().parent / "presets"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.npz"
HALF_PRECISION_MIN_SIZE = 4096  # arrays at least this large are stored in float16


def list_presets() -> list[str]:
    """Names of the presets shipped with this installation."""
    return sorted(p.parent.name for p in PRESETS_DIR.glob(f"*/{WEIGHTS_FILE}"))


def is_preset_folder(path) -> bool:
    path = pathlib.Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def names_a_model(spec: str) -> bool:
    """Whether `spec` is an existing file, a shipped preset or a preset folder (checked without TensorFlow)."""
    return pathlib.Path(spec).is_file() or spec in list_presets() or is_preset_folder(spec)


def preset_folder(name_or_path: str) -> pathlib.Path:
    """A shipped preset's folder, or a folder written by `save_preset`, with a clear error otherwise."""
    for candidate in (PRESETS_DIR / name_or_path, pathlib.Path(name_or_path)):
        if is_preset_folder(candidate):
            return candidate
    raise DataError(f"{name_or_path!r}: not a shipped preset nor a preset folder "
                    f"(shipped presets: {', '.join(list_presets()) or 'none'})")


def save_preset(model, folder) -> pathlib.Path:
    """Writes `model` (a RARLandmarker) as a preset folder, each file atomically."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for index, weight in enumerate(model.weights):
        value = np.asarray(weight.numpy())
        if value.dtype == np.float32 and value.size >= HALF_PRECISION_MIN_SIZE:
            value = value.astype(np.float16)
        arrays[_key(index)] = value
    write_atomically(folder / WEIGHTS_FILE, lambda tmp: np.savez_compressed(tmp, **arrays))
    write_bytes_atomically(folder / CONFIG_FILE, _config_json(model).encode())
    return folder


def load_preset(name_or_path: str):
    """Builds the RARLandmarker of a preset and loads its weights."""
    import tensorflow as tf

    from rar_keras.config import RARConfig
    from rar_keras.model import RARLandmarker

    folder = preset_folder(name_or_path)
    try:
        config = RARConfig.load(folder / CONFIG_FILE)
    except (ValueError, TypeError) as error:
        raise DataError(f"{folder / CONFIG_FILE}: not a valid rar_keras config: {error}") from error
    model = RARLandmarker(config)
    model(tf.zeros([1, config.input_size, config.input_size, 3]), training=False)
    try:
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored:
            if len(stored.files) != len(model.weights):
                raise DataError(f"{folder / WEIGHTS_FILE}: holds {len(stored.files)} weights, the config "
                                f"builds a model of {len(model.weights)}: weights missing or extra")
            for index, weight in enumerate(model.weights):
                value = stored[_key(index)]
                if tuple(value.shape) != tuple(weight.shape):
                    raise DataError(f"{folder / WEIGHTS_FILE}: {weight.path} has shape {value.shape}, "
                                    f"the config expects {tuple(weight.shape)}")
                weight.assign(value.astype(weight.dtype))
    except (OSError, ValueError) as error:
        raise DataError(f"{folder / WEIGHTS_FILE}: cannot read the preset weights: {error}") from error
    return model


def _key(index: int) -> str:
    """Weights are stored in the model's (deterministic) weight order; layer names are not stable."""
    return f"w{index:04d}"


def _config_json(model) -> str:
    import json

    return json.dumps(model.config.to_dict(), indent=2) + "\n"
