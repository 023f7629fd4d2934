"""Keras models for inference: loading a preset or a `.keras` file safely, and the crop model."""

from __future__ import annotations

import zipfile

import numpy as np

from datasets.errors import DataError
from datasets.schemes import get_scheme
from rar_keras.inference.flip_test import flip_averaged
from rar_keras.inference.model_spec import KERAS, PRESET, resolve_model_spec
from rar_keras.models.config import POSTERIOR_STAGE

# What an exported file gives too (export.graph.OUTPUT_NAMES).
DEPLOYED_OUTPUTS = ("landmarks", "visibility", "confidence", "attention")


def load_model(spec, argument: str = "model"):
    """Loads a `RARLandmarker` from a preset (name or folder) or a `.keras` file, in Keras's safe mode.

    Safe mode refuses files that would run code on load (lambda layers); such a
    file, a corrupt file or a model of another class gives a DataError naming it.
    """
    resolved = resolve_model_spec(spec, (PRESET, KERAS), argument)
    # TensorFlow loads here, once the spec is known to name a Keras model.
    from rar_keras.models.rar_landmarker import RARLandmarker

    if resolved.kind == PRESET:
        return RARLandmarker.from_preset(str(resolved.path))
    path = resolved.path
    if not zipfile.is_zipfile(path):   # checked before TensorFlow loads: a wrong file fails fast
        raise DataError(f"{path}: not a Keras model archive (.keras is a zip file)")
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except ValueError as error:
        if "lambda" in str(error).lower() or "safe_mode" in str(error):
            raise DataError(f"{path}: refused, the file holds code (a Lambda layer) that safe mode "
                            "does not run; only load such a file if you trust its source") from error
        raise DataError(f"{path}: cannot load this model file: {error}") from error
    except (KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as error:
        # A zip that is not a Keras model, a truncated archive, an unknown class name.
        raise DataError(f"{path}: cannot load this model file (expected a .keras model saved by "
                        f"rar_keras): {type(error).__name__}: {error}") from error
    if not isinstance(model, RARLandmarker):
        raise DataError(f"{path}: holds a {type(model).__name__}, expected a rar_keras RARLandmarker")
    return model


class KerasCropModel:
    """A loaded model as a function of face crops: uint8/float (N, S, S, 3) RGB -> (N, L, 2) crop pixels.

    Args:
        model: a `RARLandmarker`.
        batch_size: crops per forward pass.
        flip_test: average every prediction with the one on the mirrored crop
            (`rar_keras.inference.flip_test`; twice the compute).
    """

    def __init__(self, model, batch_size: int = 32, flip_test: bool = False):
        self.model = model
        self.batch_size = batch_size
        self.flip_test = bool(flip_test)
        self.input_size = model.config.input_size
        self.margin = model.config.margin
        self.scheme = get_scheme(model.config.scheme)
        self.quality = None             # a preset's `QualityModel`, set by `load_crop_model`

    def _outputs(self, crops, init_mode=None):
        crops = np.asarray(crops, np.float32)
        size = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise DataError(f"crops must be (N, {size}, {size}, 3) RGB, got {crops.shape}")
        for start in range(0, len(crops), self.batch_size):
            yield self.model(crops[start:start + self.batch_size], training=False, init_mode=init_mode)

    def _flip_averaged(self, predict, crops):
        if not self.flip_test:
            return predict(crops)
        return flip_averaged(predict, crops, self.scheme, self.input_size, self.model.config.landmark_offset_pixels)

    def __call__(self, crops) -> np.ndarray:
        return self.predict(crops)["landmarks"]

    def predict(self, crops) -> dict:
        """{"landmarks" (N, L, 2) crop pixels, "visibility" (N, L), "confidence" (N, L), "attention" (N, T)}."""
        return self._flip_averaged(self._deployed_outputs, crops)

    def predict_steps(self, crops, init_mode=None) -> dict:
        """Shapes at every stage: "detected" S_d, "step_0" the start S_0, ..., "step_T", and "posterior"
        (the output) when the model holds a shape prior; "attention" and "visibility"."""
        return self._flip_averaged(lambda batch: self._steps(batch, init_mode), crops)

    def _deployed_outputs(self, crops) -> dict:
        collected: dict[str, list] = {name: [] for name in DEPLOYED_OUTPUTS}
        for out in self._outputs(crops):
            for name in DEPLOYED_OUTPUTS:
                collected[name].append(out[name].numpy())
        if not collected["landmarks"]:
            return {"landmarks": np.zeros((0, self.scheme.num_points, 2), np.float32)}
        return {name: np.concatenate(parts) for name, parts in collected.items()}

    def _steps(self, crops, init_mode=None) -> dict:
        collected: dict[str, list] = {}
        for out in self._outputs(crops, init_mode):
            steps = out["steps"].numpy()
            stages = {"detected": out["detected"].numpy(), "attention": out["attention"].numpy(),
                      "visibility": out["visibility"].numpy()}
            stages.update({f"step_{t}": steps[:, t] for t in range(steps.shape[1])})
            if self.model.shape_posterior is not None:
                stages[POSTERIOR_STAGE] = out["landmarks"].numpy()
            for key, value in stages.items():
                collected.setdefault(key, []).append(value)
        return {key: np.concatenate(value) for key, value in collected.items()}

