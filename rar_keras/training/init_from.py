"""`--init-from`: a run starts from the weights of a preset or `.keras` file, matched by layer path."""

from __future__ import annotations

from typing import Sequence

from rar_keras.utils.weight_paths import assign_by_path, weights_by_path


def copy_weights(source, model, spec: str, only: Sequence[str] = ()) -> int:
    """Copies `source`'s weights into `model` by layer path; returns how many were copied.

    Args:
        source: the loaded model (`spec` names it in errors).
        model: the built model to initialise.
        spec: the `--init-from` argument.
        only: layer-path prefixes (e.g. "backbone/"): copy just the weights under them, leaving the
            rest as initialised; empty copies every weight, and the architectures must match.

    Raises:
        DataError: a missing, extra or mis-shaped weight (within `only`), naming it.
    """
    arrays = {path: weight.numpy() for path, weight in weights_by_path(source).items()}
    prefixes = tuple(only)

    def selected(path: str) -> bool:
        return not prefixes or path.startswith(prefixes)

    return assign_by_path(model, arrays, f"--init-from {spec}", select=selected)
