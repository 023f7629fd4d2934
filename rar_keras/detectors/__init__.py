"""Face detectors that give the landmarker its boxes: the `FaceDetector` protocol and box
adjustment (`base`), BlazeFace, YuNet, and `make_detector`."""
