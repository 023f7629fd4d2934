"""The Python API: images or paths in, faces with landmarks in image pixels out.

MediaPipe-style: an options object, result dataclasses, and an empty result
(never None) when an image has no face. Faces come from a pluggable detector
(BlazeFace by default, see `rar_keras.detectors`) or from boxes the caller
gives; each face goes through `CropLandmarker` (cropped around its box with the
model's own margin, the crop landmarks mapped back to the image).

Example:
    >>> landmarker = FaceLandmarker.create(LandmarkerOptions(model="w300_mobile"))
    >>> result = landmarker.detect("photo.jpg")
    >>> for face in result.faces:
    ...     print(face.box, face.landmarks.shape)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import IMAGE_EXTENSIONS
from rar_keras.detectors.base import DEFAULT_SCORE_THRESHOLD, FaceDetector
from rar_keras.detectors.factory import make_detector

DEFAULT_PRESET = "w300_mobile"
DEFAULT_DETECTOR = "blazeface"
DEFAULT_BATCH_SIZE = 16
USER_BOX_SCORE = None      # a box given by the caller has no detector score

ImageInput = Union[str, "os.PathLike[str]", np.ndarray]


@dataclasses.dataclass(frozen=True)
class LandmarkerOptions:
    """How a `FaceLandmarker` is built.

    Args:
        model: a shipped preset name or folder, or a `.keras`, `.tflite` or `.onnx` file.
        detector: "blazeface" (default), "blazeface:full", "blazeface:short",
            "yunet:PATH" (a YuNet .onnx), or any object with
            `detect(image) -> (boxes (N, 4), scores (N,))` in landmark-box convention.
        min_face_score: detections scoring lower are dropped.
        max_faces: keep at most this many faces per image, best scores first (None = all).
        batch_size: face crops per model call (and images per chunk in batch/directory use).
        with_steps: also return every refinement stage and the attention centres per face.
        flip_test: average each face's landmarks with those found on its mirror image (more
            accurate, twice the model's compute; off by default so that results match the
            exported `.tflite` / `.onnx` files).
    """

    model: str = DEFAULT_PRESET
    detector: Union[str, FaceDetector] = DEFAULT_DETECTOR
    min_face_score: float = DEFAULT_SCORE_THRESHOLD
    max_faces: Optional[int] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    with_steps: bool = False
    flip_test: bool = False

    def __post_init__(self):
        if not 0.0 <= self.min_face_score <= 1.0:
            raise DataError(f"min_face_score must be in [0, 1], got {self.min_face_score}")
        if self.max_faces is not None and self.max_faces < 1:
            raise DataError(f"max_faces must be a positive integer or None, got {self.max_faces}")
        if self.batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {self.batch_size}")


@dataclasses.dataclass
class FaceLandmarks:
    """One face.

    Args:
        landmarks: (L, 2) float32 x, y in image pixels (pixel centres on integers).
        box: (4,) float32 x0, y0, x1, y1: the box the face was cropped around.
        score: the detector's score, None for a box the caller gave.
        scheme: landmark scheme name, e.g. "300w68".
        visibility: (L,) float32 probability that each landmark is visible (not hidden by an
            occluder), when the model predicts it; else None.
        steps: with `with_steps`: stage name ("detected", "step_0", ..., "step_T")
            -> (L, 2) image pixels; else None.
        attention: with `with_steps`: the landmark index attended at each step; else None.
    """

    landmarks: np.ndarray
    box: np.ndarray
    score: Optional[float]
    scheme: str
    visibility: Optional[np.ndarray] = None
    steps: Optional[dict] = None
    attention: Optional[tuple] = None

    def to_dict(self) -> dict:
        """JSON-ready: box, score, landmarks (and visibility, steps and attention when present)."""
        out = {"box": [round(float(v), 2) for v in self.box],
               "score": None if self.score is None else round(float(self.score), 4),
               "landmarks": np.round(self.landmarks.astype(np.float64), 2).tolist()}
        if self.visibility is not None:
            out["visibility"] = np.round(self.visibility.astype(np.float64), 3).tolist()
        if self.steps is not None:
            out["steps"] = {k: np.round(v.astype(np.float64), 2).tolist() for k, v in self.steps.items()}
        if self.attention is not None:
            out["attention"] = list(self.attention)
        return out


@dataclasses.dataclass
class LandmarkerResult:
    """The faces found in one image.

    Args:
        faces: one `FaceLandmarks` per face, best score first (empty when no face).
        image_path: the file the image came from, None for an array.
        image_size: (width, height) in pixels.
        scheme: landmark scheme name of the model.
    """

    faces: list
    image_path: Optional[str]
    image_size: tuple
    scheme: str

    @property
    def empty(self) -> bool:
        """True when no face was found (or given)."""
        return not self.faces

    def to_dict(self) -> dict:
        """{"image", "size": [w, h], "scheme", "faces": [{"box", "score", "landmarks"}, ...]}."""
        return {"image": self.image_path, "size": list(self.image_size), "scheme": self.scheme,
                "faces": [face.to_dict() for face in self.faces]}


def load_image(image: ImageInput, source: str = "image") -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 pixels, path or None) from a path or an array (grey, RGB or RGBA)."""
    from datasets.images import check_image_size, read_image, to_rgb_uint8

    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        return read_image(path), path
    pixels = to_rgb_uint8(np.asarray(image), source)
    check_image_size(pixels.shape[0], pixels.shape[1], source)
    return pixels, None


def image_files(folder) -> list[str]:
    """The image files directly in `folder` (by extension), sorted."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _user_boxes(boxes, image: np.ndarray, source: str) -> np.ndarray:
    from datasets.record import check_box

    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), np.float32)
    if boxes.shape[-1] != 4 or boxes.ndim > 2:
        raise DataError(f"{source}: face boxes must be (4,) or (K, 4) x0,y0,x1,y1, got shape {boxes.shape}")
    boxes = boxes.reshape(-1, 4)
    for i, box in enumerate(boxes):
        check_box(box, image.shape[:2], f"{source}: box {i}" if len(boxes) > 1 else source)
    return boxes.astype(np.float32)


class FaceLandmarker:
    """Finds faces and their landmarks; build it with `FaceLandmarker.create(options)`.

    Args:
        crop_model: a crop model (`rar_keras.inference.crop_models.load_crop_model`).
        detector: a `FaceDetector`.
        options: the `LandmarkerOptions` it was built from.

    Example:
        >>> landmarker = FaceLandmarker.create(LandmarkerOptions(model="model.keras"))
        >>> results = landmarker.detect_directory("photos/")
    """

    def __init__(self, crop_model, detector: FaceDetector, options: LandmarkerOptions):
        from rar_keras.inference.crop_landmarker import CropLandmarker

        self.crop_model = crop_model
        self.faces = CropLandmarker(crop_model, batch_size=options.batch_size)
        self.detector = detector
        self.options = options
        self.scheme = crop_model.scheme.name

    @classmethod
    def create(cls, options: LandmarkerOptions | None = None) -> "FaceLandmarker":
        """Loads the model and the detector (DataError on a bad model, preset or detector)."""
        options = options or LandmarkerOptions()
        from rar_keras.inference.crop_models import load_crop_model

        detector = make_detector(options.detector, score_threshold=options.min_face_score)
        crop_model = load_crop_model(options.model, options.batch_size, options.flip_test)
        if options.with_steps and not hasattr(crop_model, "predict_steps"):
            raise DataError(f"model {options.model}: with_steps needs a Keras model (a preset or .keras file)")
        return cls(crop_model, detector, options)

    # === Public API ===

    def detect(self, image: ImageInput, boxes=None) -> LandmarkerResult:
        """The faces in one image (path or RGB array); `boxes` (4,) or (K, 4) skip the detector."""
        return self.detect_batch([image], None if boxes is None else [boxes])[0]

    def detect_batch(self, images: Sequence[ImageInput], boxes: Optional[Sequence] = None) -> list:
        """One `LandmarkerResult` per image; `boxes[i]` (None = detect) gives image i's faces."""
        return list(self.iter_results(images, boxes))

    def detect_directory(self, folder) -> dict:
        """{image path: LandmarkerResult} for every image file directly in `folder`."""
        paths = image_files(folder)
        return dict(zip(paths, self.iter_results(paths)))

    def iter_results(self, images: Iterable[ImageInput], boxes: Optional[Sequence] = None
                     ) -> Iterator[LandmarkerResult]:
        """Like `detect_batch`, lazily: reads and runs `batch_size` images at a time."""
        images = list(images)
        if boxes is not None and len(boxes) != len(images):
            raise DataError(f"{len(images)} images but {len(boxes)} box entries")
        step = self.options.batch_size
        for start in range(0, len(images), step):
            chunk_boxes = [None] * step if boxes is None else boxes[start:start + step]
            yield from self._run_chunk(images[start:start + step], chunk_boxes, start)

    # === Internals ===

    def _faces_of(self, image: np.ndarray, boxes, source: str) -> tuple[np.ndarray, list]:
        if boxes is not None:
            found = _user_boxes(boxes, image, source)
            return found, [USER_BOX_SCORE] * len(found)
        found, scores = self.detector.detect(image)
        keep = np.flatnonzero(np.asarray(scores) >= self.options.min_face_score)
        keep = keep[np.argsort(-np.asarray(scores)[keep], kind="stable")][:self.options.max_faces]
        return np.asarray(found, np.float32).reshape(-1, 4)[keep], [float(s) for s in np.asarray(scores)[keep]]

    def _run_chunk(self, images: list, boxes: list, first_index: int) -> list:
        loaded, face_images, face_boxes = [], [], []
        for offset, (image, image_boxes) in enumerate(zip(images, boxes)):
            pixels, path = load_image(image, f"image {first_index + offset}")
            found, scores = self._faces_of(pixels, image_boxes, path or f"image {first_index + offset}")
            loaded.append((pixels, path, found, scores))
            face_images += [pixels] * len(found)
            face_boxes += list(found)
        stages = self._predict(face_images, np.asarray(face_boxes, np.float32).reshape(-1, 4))
        results, index = [], 0
        for pixels, path, found, scores in loaded:
            face_list = []
            for box, score in zip(found, scores):
                steps = {k: v[index] for k, v in stages.items() if k.startswith("step_") or k == "detected"}
                attention = tuple(int(a) for a in stages["attention"][index]) if "attention" in stages else None
                visibility = stages["visibility"][index].astype(np.float32) if "visibility" in stages else None
                face_list.append(FaceLandmarks(
                    landmarks=stages["landmarks"][index].astype(np.float32), box=np.asarray(box, np.float32),
                    score=score, scheme=self.scheme, visibility=visibility,
                    steps=steps if self.options.with_steps else None,
                    attention=attention if self.options.with_steps else None))
                index += 1
            results.append(LandmarkerResult(face_list, path, (pixels.shape[1], pixels.shape[0]), self.scheme))
        return results

    def _predict(self, images: list, boxes: np.ndarray) -> dict:
        """{"landmarks": (N, L, 2) image pixels} plus, with `with_steps`, every stage and "attention"."""
        if not images:
            return {}
        if not self.options.with_steps:
            return self.faces.predict_outputs(images, boxes)
        stages = self.faces.predict_steps(images, boxes)
        last = max((k for k in stages if k.startswith("step_")), key=lambda k: int(k.split("_")[1]))
        return {**stages, "landmarks": stages[last]}
