"""`make_detector`: a detector from its spec ("blazeface", "blazeface:full", "yunet:PATH", ...)."""

from __future__ import annotations

from datasets.errors import DataError
from rar_keras.detectors.base import DEFAULT_SCORE_THRESHOLD, FaceDetector

YUNET_PREFIX = "yunet:"
BLAZEFACE = "blazeface"
DETECTOR_SPECS = ("blazeface", "blazeface:auto", "blazeface:full", "blazeface:short", "yunet:PATH")


def make_detector(spec, score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> FaceDetector:
    """A detector from a spec: "blazeface" (= "blazeface:auto"), "blazeface:full|short", "yunet:PATH",
    or a FaceDetector object (returned as is).

    Raises:
        DataError: an unknown spec or a missing/unloadable model file.
    """
    if not isinstance(spec, str):
        if isinstance(spec, FaceDetector):
            return spec
        raise DataError(f"detector {spec!r}: expected one of {DETECTOR_SPECS} or an object with "
                        "detect(image) -> (boxes, scores)")
    if spec == BLAZEFACE or spec.startswith(BLAZEFACE + ":"):
        from rar_keras.detectors.blazeface import AUTO, BlazeFaceDetector

        variant = spec.partition(":")[2] or AUTO
        return BlazeFaceDetector(variant, score_threshold=score_threshold)
    if spec.startswith(YUNET_PREFIX) and len(spec) > len(YUNET_PREFIX):
        from rar_keras.detectors.yunet import YuNetDetector

        return YuNetDetector(spec[len(YUNET_PREFIX):], score_threshold=score_threshold)
    raise DataError(f"unknown detector {spec!r}: use one of {', '.join(DETECTOR_SPECS)}")
