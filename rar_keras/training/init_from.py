"""`--init-from`: a run starts from the weights of a preset or `.keras` file, matched by layer path."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from datasets.errors import DataError
from rar_keras.inference.keras_model import load_model
from rar_keras.inference.model_spec import PRESET
from rar_keras.models.config import OCCLUDER_MASK_WEIGHTS, SHAPE_FIT_WEIGHTS
from rar_keras.presets.loader import WEIGHTS_FILE
from rar_keras.utils.weight_paths import assign_by_path, weights_by_path


def source_weights(spec, only: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """{layer path: array} of the model `spec` names (a resolved `ModelSpec` of a preset or .keras file).

    With `only`, a preset's weights are read straight from its `weights.npz`, so the source need
    not be buildable by this version (e.g. the backbone of a model whose head has changed).
    """
    if only and spec.kind == PRESET:
        try:
            with np.load(spec.path / WEIGHTS_FILE, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files}
        except (OSError, ValueError) as error:
            raise DataError(f"--init-from {spec.text}: cannot read {spec.path / WEIGHTS_FILE}: {error}") from None

    source = load_model(spec.text, "--init-from")
    return {path: weight.numpy() for path, weight in weights_by_path(source).items()}


def left_out(model) -> Callable[[str], bool]:
    """Whether a source weight path belongs to an encoder block `model`'s backbone leaves out (a
    shallower encoder started from a deeper one's weights)."""
    omits = getattr(getattr(model, "backbone", None), "omits", None)
    prefix = "backbone/"
    if omits is None:
        return lambda path: False
    return lambda path: path.startswith(prefix) and omits(path[len(prefix):])


def copy_weights(arrays: dict, model, spec: str, only: Sequence[str] = ()) -> int:
    """Copies `arrays` ({layer path: array}, from `spec`) into `model`; returns how many were copied.

    The weights of encoder blocks that `model` leaves out (`encoder_repeats`) are skipped, and so are
    the heatmap shape fit's shape model (either side may lack it; training fits it from its own
    faces) and the occluder mask head (a training run has none: `tools.fit_occluder_mask` trains it
    on the finished model); every other weight must match.

    Args:
        arrays: the source's weights.
        model: the built model to initialise.
        spec: the `--init-from` argument, named in errors.
        only: layer-path prefixes (e.g. "backbone/"): copy just the weights under them, leaving the
            rest as initialised; empty copies every weight, and the architectures must match.

    Raises:
        DataError: a missing, extra or mis-shaped weight (within `only`), naming it.
    """
    prefixes = tuple(only)

    skipped = left_out(model)

    def selected(path: str) -> bool:
        return ((not prefixes or path.startswith(prefixes)) and not skipped(path)
                and not path.startswith((SHAPE_FIT_WEIGHTS, OCCLUDER_MASK_WEIGHTS)))

    return assign_by_path(model, arrays, f"--init-from {spec}", select=selected)
