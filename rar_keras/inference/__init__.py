"""Inference: model specs and loading, crop models (Keras, LiteRT, ONNX), crop -> model -> image,
the `FaceLandmarker` task API, the flip test and overlays."""
