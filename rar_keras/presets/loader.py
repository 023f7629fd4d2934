"""Preset folders: `config.json` (the class name and its architecture) and `weights.npz` (every
weight under its layer path, see `rar_keras.utils.weight_paths`).

Large trainable arrays are stored in float16 (half the size of a `.keras` file, which also
carries the optimizer state) and loaded into a float32 model; everything else (the shape bank,
batch-norm statistics, small arrays) keeps its own dtype. Loading runs no code from the files:
`config.json` is plain JSON and `weights.npz` is read with `allow_pickle=False`. The loader
never imports a model class: the caller passes it (`RARLandmarker.from_preset`), or it is looked
up by its registered name among the classes already imported.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np

from datasets.errors import DataError
from rar_keras.utils.atomic import write_atomically, write_bytes_atomically

PRESETS_DIR = pathlib.Path(__file__).resolve().parent
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.npz"
TFLITE_FILE = "model.tflite"    # the LiteRT file of the same weights, made by `python -m export`
FORMAT_VERSION = 2
HALF_PRECISION_MIN_SIZE = 4096  # trainable float32 arrays at least this large are stored in float16


def weights_digest(folder) -> str:
    """SHA-256 of a preset's weights file: an exported file records it, so a stale one can be told."""
    return hashlib.sha256((pathlib.Path(folder) / WEIGHTS_FILE).read_bytes()).hexdigest()


def config_digest(folder) -> str:
    """SHA-256 of a preset's config (its JSON content with sorted keys, so whitespace and line endings
    do not count): an exported file records it beside the weights', so a file exported before
    `make_preset --set` changed an inference setting (the start, the number of steps) can be told."""
    return hashlib.sha256(json.dumps(read_preset_config(folder), sort_keys=True).encode()).hexdigest()


def list_presets() -> list[str]:
    """Names of the presets shipped with this installation."""
    return sorted(p.parent.name for p in PRESETS_DIR.glob(f"*/{WEIGHTS_FILE}"))


def is_preset_folder(path) -> bool:
    path = pathlib.Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def preset_folder(name_or_path) -> pathlib.Path:
    """A shipped preset's folder, or a folder written by `save_preset`, with a clear error otherwise."""
    for candidate in (PRESETS_DIR / str(name_or_path), pathlib.Path(name_or_path)):
        if is_preset_folder(candidate):
            return candidate
    raise DataError(f"{name_or_path!s}: not a shipped preset nor a preset folder "
                    f"(shipped presets: {', '.join(list_presets()) or 'none'})")


def read_preset_config(name_or_path) -> dict:
    """The preset's `config.json`: {"class_name", "registered_name", "config", "format_version"}."""
    path = preset_folder(name_or_path) / CONFIG_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable preset config ({error})") from None
    if not isinstance(stored, dict) or stored.get("format_version") != FORMAT_VERSION or \
            not isinstance(stored.get("config"), dict):
        raise DataError(f"{path}: expected a rar_keras preset config (format_version {FORMAT_VERSION} "
                        "with class_name and config)")
    return stored


def save_preset(model, folder) -> pathlib.Path:
    """Writes a built model (e.g. a `RARLandmarker`) as a preset folder, each file atomically."""
    # TensorFlow loads only to save or build a model: listing presets stays light.
    import keras

    from rar_keras.utils.weight_paths import weights_by_path

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for path, weight in weights_by_path(model).items():
        value = np.asarray(weight.numpy())
        if weight.trainable and value.dtype == np.float32 and value.size >= HALF_PRECISION_MIN_SIZE:
            value = value.astype(np.float16)
        arrays[path] = value
    config = {"format_version": FORMAT_VERSION, "class_name": type(model).__name__,
              "registered_name": keras.saving.get_registered_name(type(model)),
              "config": {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")}}
    write_atomically(folder / WEIGHTS_FILE, lambda tmp: np.savez_compressed(tmp, **arrays))
    write_preset_config(folder, config)
    return folder


def write_preset_config(folder, stored: dict) -> None:
    """Writes a preset's `config.json` (the dict `read_preset_config` gives) atomically."""
    write_bytes_atomically(pathlib.Path(folder) / CONFIG_FILE, (json.dumps(stored, indent=2) + "\n").encode())


def load_preset(name_or_path, cls=None):
    """Builds the model a preset describes and loads its weights.

    Args:
        name_or_path: a shipped preset name or a preset folder.
        cls: the model class (default: the class registered under the stored name, which must
            have been imported).

    Raises:
        DataError: naming the file and the weight or field that is wrong.
    """
    # TensorFlow loads only to save or build a model: listing presets stays light.
    import keras

    from rar_keras.utils.weight_paths import assign_by_path

    folder = preset_folder(name_or_path)
    stored = read_preset_config(folder)
    if cls is None:
        cls = keras.saving.get_registered_object(stored.get("registered_name", ""))
        if cls is None:
            raise DataError(f"{folder / CONFIG_FILE}: class {stored.get('registered_name')!r} is not "
                            "registered (import the module that defines it first)")
    elif stored.get("class_name") != cls.__name__:
        raise DataError(f"{folder / CONFIG_FILE}: holds a {stored.get('class_name')}, not a {cls.__name__}")
    try:
        model = cls.from_config(stored["config"])
    except (ValueError, TypeError) as error:
        raise DataError(f"{folder / CONFIG_FILE}: not a valid {cls.__name__} config: {error}") from error
    model.build_for_inference()
    try:
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored_arrays:
            arrays = {key: stored_arrays[key] for key in stored_arrays.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{folder / WEIGHTS_FILE}: cannot read the preset weights: {error}") from error
    assign_by_path(model, arrays, str(folder / WEIGHTS_FILE))
    return model
