"""`--init-from`: a run starts from the weights of a preset or `.keras` file, matched by layer path."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from datasets.errors import DataError
from rar_keras.inference.keras_model import load_model
from rar_keras.inference.model_spec import PRESET
from rar_keras.models.config import OCCLUDER_MASK_WEIGHTS, SHAPE_MODEL_WEIGHTS
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
    the shape models (the heatmap shape fit's and the output's prior: either side may lack them;
    training fits them from its own faces). The occluder mask head is copied when `model` has one
    (whatever `only` says: training keeps it frozen, so it must come from the source) and skipped
    when it has none; every other weight must match.

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
    has_head = getattr(model, "occluder_mask", None) is not None
    if has_head and not any(path.startswith(OCCLUDER_MASK_WEIGHTS) for path in arrays):
        raise DataError(f"--init-from {spec}: holds no occluder mask head, which this model (occluder_mask=true) "
                        f"keeps frozen; train one with python -m tools.fit_occluder_mask")

    def selected(path: str) -> bool:
        if path.startswith(OCCLUDER_MASK_WEIGHTS):
            return has_head
        return ((not prefixes or path.startswith(prefixes)) and not skipped(path)
                and not path.startswith(SHAPE_MODEL_WEIGHTS))

    return assign_by_path(model, arrays, f"--init-from {spec}", select=selected)
