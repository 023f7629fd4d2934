"""The RAR model: its configuration, the `RARLandmarker` task, its losses and shape bank."""
