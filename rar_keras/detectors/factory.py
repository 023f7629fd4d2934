"""`make_detector`: a detector from its spec ("yunet", "yunet:PATH", "blazeface", "blazeface:full", ...)."""

from __future__ import annotations

from datasets.errors import DataError
from rar_keras.detectors.base import DEFAULT_SCORE_THRESHOLD, FaceDetector
from rar_keras.detectors.blazeface import AUTO, BlazeFaceDetector
from rar_keras.detectors.yunet import BUNDLED_YUNET, YuNetDetector

YUNET = "yunet"
YUNET_PREFIX = "yunet:"
BLAZEFACE = "blazeface"
DETECTOR_SPECS = ("yunet", "yunet:PATH", "blazeface", "blazeface:auto", "blazeface:full", "blazeface:short")


def make_detector(spec, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> FaceDetector:
    """A detector from a spec: "yunet" (the bundled model), "yunet:PATH" (another YuNet .onnx),
    "blazeface" (= "blazeface:auto"), "blazeface:full|short", or a FaceDetector object (returned as is).

    Raises:
        DataError: an unknown spec or a missing/unloadable model file.
    """
    if not isinstance(spec, str):
        if isinstance(spec, FaceDetector):
            return spec
        raise DataError(f"detector {spec!r}: expected one of {DETECTOR_SPECS} or an object with "
                        "detect(image) -> (boxes, scores)")
    if spec == BLAZEFACE or spec.startswith(BLAZEFACE + ":"):
        variant = spec.partition(":")[2] or AUTO
        return BlazeFaceDetector(variant, score_threshold=score_threshold)
    if spec == YUNET:
        return YuNetDetector(BUNDLED_YUNET, score_threshold=score_threshold)
    if spec.startswith(YUNET_PREFIX) and len(spec) > len(YUNET_PREFIX):
        return YuNetDetector(spec[len(YUNET_PREFIX):], score_threshold=score_threshold)
    raise DataError(f"unknown detector {spec!r}: use one of {', '.join(DETECTOR_SPECS)}")
