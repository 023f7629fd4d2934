"""Weights addressed by layer path ("backbone/stages/1/0/depthwise/0/kernel"), never by position.

A path is the chain of attribute names from the model down to the layer that owns the weight
(list items and `Sequential` layers by index), then the weight's own name. Paths do not depend
on Keras's auto-generated layer names (which change with what else a process has built), so
two same-shaped cells can never swap silently.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np

from datasets.errors import DataError


def weights_by_path(model: keras.layers.Layer) -> dict[str, "keras.Variable"]:
    """{path: weight} for every weight of `model` (its `weights`, in Keras's own order)."""
    found: dict[str, keras.Variable] = {}
    seen: set[int] = set()

    def visit(layer: keras.layers.Layer, prefix: str) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        for weight in list(layer._trainable_variables) + list(layer._non_trainable_variables):
            path = f"{prefix}{weight.name}"
            if path in found:
                raise ValueError(f"two weights of {type(layer).__name__} share the path {path}")
            found[path] = weight
        for name, child in _children(layer):
            visit(child, f"{prefix}{name}/")

    visit(model, "")
    owned = {id(w) for w in found.values()}
    missing = [w.path for w in model.weights if id(w) not in owned]
    if missing:
        raise ValueError(f"weights outside the attribute tree of {type(model).__name__}: {missing[:5]}")
    order = {id(w): i for i, w in enumerate(model.weights)}
    return dict(sorted(found.items(), key=lambda item: order.get(id(item[1]), len(order))))


def _children(layer: keras.layers.Layer):
    if isinstance(layer, keras.Sequential):
        yield from ((str(i), child) for i, child in enumerate(layer.layers))
        return
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer):
            yield name, value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, keras.layers.Layer) for v in value):
            yield from ((f"{name}/{i}", child) for i, child in enumerate(value))


def assign_by_path(model: keras.layers.Layer, arrays: dict[str, np.ndarray], source: str,
                   select: Callable[[str], bool] = lambda path: True, strict: bool = True) -> int:
    """Assigns `arrays[path]` to each of `model`'s weights whose path `select` accepts.

    Args:
        model: a built model.
        arrays: {path: array}, e.g. a preset's weights.npz.
        source: named in errors (a file, a preset).
        select: which of the model's weight paths to load.
        strict: a selected weight missing from `arrays`, or an array of `arrays` (within the
            selection) that the model does not have, is an error; else such entries are skipped.

    Returns: the number of weights assigned.

    Raises:
        DataError: naming the first missing, extra or mis-shaped weight.
    """
    targets = {path: weight for path, weight in weights_by_path(model).items() if select(path)}
    if strict:
        missing = [path for path in targets if path not in arrays]
        extra = [path for path in arrays if select(path) and path not in targets]
        if missing:
            raise DataError(f"{source}: no value for weight {missing[0]} ({len(missing)} missing; the "
                            "architecture differs)")
        if extra:
            raise DataError(f"{source}: holds weight {extra[0]}, which the model does not have "
                            f"({len(extra)} extra; the architecture differs)")
    count = 0
    for path, weight in targets.items():
        if path not in arrays:
            continue
        value = np.asarray(arrays[path])
        if tuple(value.shape) != tuple(weight.shape):
            raise DataError(f"{source}: weight {path} has shape {tuple(value.shape)}, the model expects "
                            f"{tuple(weight.shape)} (the architecture differs)")
        weight.assign(value.astype(weight.dtype))
        count += 1
    return count
