"""Any model spec as a crop model: `model(crops (N, S, S, 3) RGB) -> (N, L, 2)` crop pixels.

Presets and `.keras` files run in Keras (`KerasCropModel`, which also gives every refinement
stage); `.tflite` and `.onnx` files run in LiteRT / onnxruntime without TensorFlow. Each has
`input_size`, `margin` and `scheme`.
"""

from __future__ import annotations

from rar_keras.inference.model_spec import resolve_model_spec


def load_crop_model(spec, batch_size: int = 32, flip_test: bool = False, argument: str = "model"):
    """The crop model a spec names (see `rar_keras.inference.model_spec`).

    Args:
        spec: a preset name or folder, or a .keras / .tflite / .onnx file.
        batch_size: crops per Keras forward pass.
        flip_test: average each prediction with the one on the mirrored crop (twice the compute).
        argument: the option named in errors.
    """
    resolved = resolve_model_spec(spec, argument=argument)
    if resolved.is_keras:
        from rar_keras.inference.keras_model import KerasCropModel, load_model

        return KerasCropModel(load_model(resolved.text, argument), batch_size=batch_size, flip_test=flip_test)
    from rar_keras.inference.runtimes import load_runtime

    return load_runtime(resolved.path, flip_test=flip_test)
