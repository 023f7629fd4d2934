"""The Python API: images or paths in, faces with landmarks in image pixels out.

MediaPipe-style: an options object, result dataclasses, and an empty result (never None) when an
image has no face. Faces come from a pluggable detector (the bundled YuNet by default, see
`rar_keras.detectors`) or from boxes the caller gives; each face goes through `CropLandmarker`
(cropped around its box with the model's own margin, the crop landmarks mapped back to the image).
A detector's box is only roughly the face: the face is cropped again around the tight box of the
previous pass's landmarks (`refine_box`, up to `refine_crops` times, until the box settles;
`rar_keras.inference.box_refinement`), as the benchmarks' ground-truth boxes are.

A preset runs its shipped `.tflite` in LiteRT (no TensorFlow import); `runtime="keras"` runs the
Keras model instead (every refinement stage, for research).

Video: `running_mode="video"` and `detect_for_video(frame, timestamp_ms)` follow the faces from
frame to frame (`rar_keras.inference.tracking`): no detector while a face is tracked, each crop
moved by the face's optical flow and turned with it, and landmarks smoothed by a filter whose
memory moves with the face (`rar_keras.inference.stabilizer`).

Example:
    >>> landmarker = FaceLandmarker.create(LandmarkerOptions(model="w300_mobile"))
    >>> result = landmarker.detect("photo.jpg")
    >>> for face in result.faces:
    ...     print(face.box, face.landmarks.shape, face.visibility.min())
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from datasets.errors import DataError
from datasets.images import IMAGE_EXTENSIONS, check_image_size, read_image, to_rgb_uint8
from datasets.record import check_box
from rar_keras.detectors.base import DEFAULT_SCORE_THRESHOLD, FaceDetector
from rar_keras.detectors.factory import make_detector
from rar_keras.inference.box_refinement import DEFAULT_REFINE_CROPS, refine_boxes
from rar_keras.inference.crop_landmarker import CropLandmarker
from rar_keras.inference.crop_models import RUNTIMES, load_crop_model
from rar_keras.inference.one_euro import OneEuroConfig
from rar_keras.inference.stabilizer import SMOOTHING
from rar_keras.inference.tracking import FaceTracker
from rar_keras.models.config import POSTERIOR_STAGE

RUNNING_MODES = ("image", "video")
DEFAULT_PRESET = "w300_mobile"
DEFAULT_DETECTOR = "yunet"
DEFAULT_BATCH_SIZE = 16
USER_BOX_SCORE = None      # a box given by the caller has no detector score
COLOR_ORDERS = ("rgb", "bgr")

ImageInput = Union[str, "os.PathLike[str]", np.ndarray]


@dataclasses.dataclass(frozen=True)
class LandmarkerOptions:
    """How a `FaceLandmarker` is built.

    Args:
        model: a shipped preset name or folder, or a `.keras`, `.tflite` or `.onnx` file.
        detector: "yunet" (default, bundled), "yunet:PATH", "blazeface", "blazeface:full",
            "blazeface:short", or any object with `detect(image) -> (boxes (N, 4), scores (N,))`
            in landmark-box convention.
        runtime: "auto" (a preset runs its `.tflite` in LiteRT; Keras for `with_steps`), "litert"
            or "keras".
        color_order: channel order of the arrays given to `detect`: "rgb" (the contract) or "bgr"
            (what `cv2.imread` returns). Files are always read correctly.
        refine_box: crop detected faces again around their landmarks (how often: `refine_crops`).
        refine_crops: with `refine_box`, how many times at most a detected face is cropped again,
            each time around the previous pass's landmarks; a face stops once its box settles
            (moves by less than 2 % of its side). More crops help most on occluded faces, whose
            detector box is often far off.
        min_face_score: detections scoring lower are dropped.
        min_quality: faces whose quality (when the model has a quality model) is lower are dropped.
        max_faces: keep at most this many faces per image, best scores first (None = all).
        batch_size: face crops per model call (and images per chunk in batch/directory use).
        with_steps: also return every refinement stage and the attention centres per face.
        flip_test: average each face's landmarks with those found on its mirror image (more
            accurate, twice the model's compute; off by default so that results match the
            exported files run once).
        running_mode: "image" (every call on its own) or "video" (`detect_for_video`: faces
            followed from frame to frame).
        smoothing: video mode's One Euro filter of the landmarks, whose memory moves with the face
            (`inference.stabilizer`); None for no smoothing.
        optical_flow: video mode measures each face's motion between frames by optical flow
            (`inference.motion`) to place its crop and move the filter's memory; False uses the
            landmarks alone (steadier crops need the flow; see the README's video section).
        min_tracking_quality: video mode drops a face whose quality falls below this.
        redetect_every: video mode also runs the detector every this many frames (0: only when
            no face is tracked).
    """

    model: str = DEFAULT_PRESET
    detector: Union[str, FaceDetector] = DEFAULT_DETECTOR
    runtime: str = "auto"
    color_order: str = "rgb"
    refine_box: bool = True
    refine_crops: int = DEFAULT_REFINE_CROPS
    min_face_score: float = DEFAULT_SCORE_THRESHOLD
    min_quality: float = 0.0
    max_faces: Optional[int] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    with_steps: bool = False
    flip_test: bool = False
    running_mode: str = "image"
    smoothing: Optional[OneEuroConfig] = SMOOTHING
    optical_flow: bool = True
    min_tracking_quality: float = 0.0
    redetect_every: int = 0

    def __post_init__(self):
        if not 0.0 <= self.min_face_score <= 1.0:
            raise DataError(f"min_face_score must be in [0, 1], got {self.min_face_score}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise DataError(f"min_quality must be in [0, 1], got {self.min_quality}")
        if self.max_faces is not None and self.max_faces < 1:
            raise DataError(f"max_faces must be a positive integer or None, got {self.max_faces}")
        if self.batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {self.batch_size}")
        if self.runtime not in RUNTIMES:
            raise DataError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.color_order not in COLOR_ORDERS:
            raise DataError(f"color_order must be one of {COLOR_ORDERS}, got {self.color_order!r}")
        if self.running_mode not in RUNNING_MODES:
            raise DataError(f"running_mode must be one of {RUNNING_MODES}, got {self.running_mode!r}")
        if isinstance(self.refine_crops, bool) or not isinstance(self.refine_crops, int) or self.refine_crops < 1:
            raise DataError(f"refine_crops must be a positive integer, got {self.refine_crops!r}")
        if self.redetect_every < 0:
            raise DataError(f"redetect_every must be >= 0, got {self.redetect_every}")


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
        quality: how likely the landmarks are right, 0-1 (`rar_keras.inference.quality`), when the
            model has a calibrated quality model; else None.
        steps: with `with_steps`: stage name ("detected", "step_0", ..., "step_T", and "posterior"
            for a model with a shape prior) -> (L, 2) image pixels; else None.
        attention: with `with_steps`: the landmark index attended at each step; else None.
    """

    landmarks: np.ndarray
    box: np.ndarray
    score: Optional[float]
    scheme: str
    visibility: Optional[np.ndarray] = None
    quality: Optional[float] = None
    steps: Optional[dict] = None
    attention: Optional[tuple] = None

    def to_dict(self) -> dict:
        """JSON-ready: box, score, landmarks (and visibility, quality, steps and attention when present)."""
        out = {"box": [round(float(v), 2) for v in self.box],
               "score": None if self.score is None else round(float(self.score), 4),
               "landmarks": np.round(self.landmarks.astype(np.float64), 2).tolist()}
        if self.quality is not None:
            out["quality"] = round(float(self.quality), 4)
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
        """{"image", "size": [w, h], "scheme", "faces": [{"box", "score", "landmarks", ...}, ...]}."""
        return {"image": self.image_path, "size": list(self.image_size), "scheme": self.scheme,
                "faces": [face.to_dict() for face in self.faces]}


def load_image(image: ImageInput, source: str = "image", color_order: str = "rgb"
               ) -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 pixels, path or None) from a path (EXIF orientation applied) or an array.

    Args:
        image: a file path, or a grey, RGB or RGBA array (BGR(A) with `color_order="bgr"`).
        source: names the image in errors.
        color_order: channel order of an array.
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        return read_image(path, orientation=True), path
    if isinstance(image, (list, tuple)):
        raise DataError(f"{source}: expected one image (a path or an (H, W, 3) array), got a "
                        f"{type(image).__name__}; use detect_batch for several images")
    if not isinstance(image, np.ndarray):
        raise DataError(f"{source}: expected a path or an (H, W, 3) array, got {type(image).__name__}")
    pixels = to_rgb_uint8(image, source, bgr=color_order == "bgr")
    check_image_size(pixels.shape[0], pixels.shape[1], source)
    return pixels, None


def image_files(folder) -> list[str]:
    """The image files directly in `folder` (by extension), sorted."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def check_user_boxes(boxes, image: np.ndarray, source: str) -> np.ndarray:
    """`boxes` ((4,) or (K, 4) x0, y0, x1, y1) as (K, 4) float32, each checked against `image`.

    Raises: DataError naming `source` for a box of the wrong shape, of no size or outside the image.
    """
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
        >>> landmarker = FaceLandmarker.create(LandmarkerOptions(model="model.tflite"))
        >>> results = landmarker.detect_directory("photos/")
    """

    def __init__(self, crop_model, detector: FaceDetector, options: LandmarkerOptions):
        self.crop_model = crop_model
        self.faces = CropLandmarker(crop_model, batch_size=options.batch_size)
        self.detector = detector
        self.options = options
        self.scheme = crop_model.scheme.name
        self.tracker = FaceTracker(self.faces.input_size, self.faces.margin, options.smoothing,
                                   options.optical_flow, options.min_tracking_quality, options.redetect_every)

    @classmethod
    def create(cls, options: LandmarkerOptions | None = None) -> "FaceLandmarker":
        """Loads the model and the detector (DataError on a bad model, preset or detector)."""
        options = options or LandmarkerOptions()
        runtime = "keras" if options.with_steps and options.runtime == "auto" else options.runtime
        detector = make_detector(options.detector, score_threshold=options.min_face_score)
        crop_model = load_crop_model(options.model, options.batch_size, options.flip_test, runtime=runtime)
        if options.with_steps and not hasattr(crop_model, "predict_steps"):
            raise DataError(f"model {options.model}: with_steps needs a Keras model (a preset or .keras file)")
        return cls(crop_model, detector, options)

    # === Public API ===

    def detect(self, image: ImageInput, boxes=None) -> LandmarkerResult:
        """The faces in one image (path or array); `boxes` (4,) or (K, 4) skip the detector."""
        if isinstance(image, (list, tuple)):
            raise DataError(f"detect takes one image, got a {type(image).__name__} of {len(image)}; "
                            "use detect_batch for several images")
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

    def detect_for_video(self, frame: ImageInput, timestamp_ms: float, boxes=None) -> LandmarkerResult:
        """The faces in one video frame (`running_mode="video"`), frames given in time order.

        Faces tracked from the previous frame are cropped around their previous landmarks, moved by
        the face's optical flow and turned with it (no detector); the landmarks returned are
        smoothed over time, and each face's `box` is the tight box of its unsmoothed landmarks.
        When the detector runs again (`redetect_every`), faces already tracked keep their tracks
        and only new faces start one. Call `reset()` between videos. `boxes` ((K, 4) image
        pixels) stand in for the detector whenever it would run.
        """
        if self.options.running_mode != "video":
            raise DataError("detect_for_video needs LandmarkerOptions(running_mode='video')")
        last = self.tracker.last_timestamp_ms
        if last is not None and timestamp_ms <= last:
            raise DataError(f"timestamp_ms {timestamp_ms} is not after the previous frame's {last}")
        pixels, path = load_image(frame, "frame", self.options.color_order)
        detect = self.tracker.needs_detection()
        outputs = None
        if self.tracker.tracks:
            matrices = self.tracker.crop_matrices(pixels)
            outputs = self._predict([pixels] * len(matrices), matrices=matrices)
            kept = self.tracker.keep(outputs, pixels.shape[:2])
            outputs = {k: v[kept] for k, v in outputs.items()}
        if detect or not self.tracker.tracks:
            found, _, scores = self.landmarks_in(pixels, boxes)
            added = self.tracker.add(found, scores)
            if outputs is None:
                outputs = {k: v[added] for k, v in found.items()}
            elif added.any():
                outputs = {k: np.concatenate([outputs[k], found[k][added]]) for k in outputs}
        smoothed = self.tracker.smoothed(pixels, timestamp_ms)
        boxes = self.tracker.boxes() if self.tracker.tracks else np.zeros((0, 4), np.float32)
        faces = []
        for i, (points, box, track) in enumerate(zip(smoothed, boxes, self.tracker.tracks)):
            face = self._face(outputs, i, box, track.score)
            face.landmarks = points
            faces.append(face)
        return LandmarkerResult(faces, path, (pixels.shape[1], pixels.shape[0]), self.scheme)

    def reset(self) -> None:
        """Forgets the faces followed in video mode (before a new video)."""
        self.tracker.reset()

    def landmarks_in(self, image: np.ndarray, boxes: Optional[np.ndarray] = None, source: str = "boxes"
                     ) -> tuple[dict, np.ndarray, list]:
        """The product's path from an RGB image to landmarks: detect (unless `boxes` are given),
        crop and predict, and for detected faces predict again around the previous pass's landmarks
        (`refine_box`, `refine_crops`).
        `source` names the image in errors about `boxes`.

        Returns: (outputs {"landmarks": (K, L, 2), ...} in image pixels, the boxes (K, 4) the faces
        were finally cropped around, the detector scores (None for given boxes)).
        """
        if boxes is not None:
            found = check_user_boxes(boxes, image, source)
            return self._predict([image] * len(found), found), found, [USER_BOX_SCORE] * len(found)
        found, scores = self._detect(image)
        outputs = self._predict([image] * len(found), found)
        if self.options.refine_box and len(found):
            outputs, found = refine_boxes(lambda boxes: self._predict([image] * len(boxes), boxes), outputs, found,
                                          image.shape[:2], self.options.refine_crops)
        return outputs, found, scores

    # === Internals ===

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, list]:
        found, scores = self.detector.detect(image)
        scores = np.asarray(scores)
        keep = np.flatnonzero(scores >= self.options.min_face_score)
        keep = keep[np.argsort(-scores[keep], kind="stable")][:self.options.max_faces]
        return np.asarray(found, np.float32).reshape(-1, 4)[keep], [float(s) for s in scores[keep]]

    def _run_chunk(self, images: list, boxes: list, first_index: int) -> list:
        results = []
        for offset, (image, image_boxes) in enumerate(zip(images, boxes)):
            source = f"image {first_index + offset}"
            pixels, path = load_image(image, source, self.options.color_order)
            outputs, found, scores = self.landmarks_in(pixels, image_boxes, path or source)
            faces = [self._face(outputs, i, box, score) for i, (box, score) in enumerate(zip(found, scores))]
            faces = [f for f in faces if f.quality is None or f.quality >= self.options.min_quality]
            results.append(LandmarkerResult(faces, path, (pixels.shape[1], pixels.shape[0]), self.scheme))
        return results

    def _face(self, outputs: dict, index: int, box, score) -> FaceLandmarks:
        steps = {k: v[index] for k, v in outputs.items() if k.startswith("step_") or k in ("detected", POSTERIOR_STAGE)}
        attention = tuple(int(a) for a in outputs["attention"][index]) if "attention" in outputs else None
        visibility = outputs["visibility"][index].astype(np.float32) if "visibility" in outputs else None
        quality = float(outputs["quality"][index]) if "quality" in outputs else None
        return FaceLandmarks(landmarks=outputs["landmarks"][index].astype(np.float32),
                             box=np.asarray(box, np.float32), score=score, scheme=self.scheme,
                             visibility=visibility, quality=quality,
                             steps=steps if self.options.with_steps else None,
                             attention=attention if self.options.with_steps else None)

    def _predict(self, images: list, boxes: Optional[np.ndarray] = None, matrices: Optional[np.ndarray] = None
                 ) -> dict:
        """{"landmarks": (N, L, 2) image pixels, ...} plus, with `with_steps`, every stage; faces
        given by `boxes` (N, 4) or crop `matrices` (N, 2, 3)."""
        if not images:
            return {"landmarks": np.zeros((0, self.crop_model.scheme.num_points, 2), np.float32)}
        if not self.options.with_steps:
            return self.faces.predict_outputs(images, boxes, matrices)
        stages = self.faces.predict_steps(images, boxes, matrices)
        last = max((k for k in stages if k.startswith("step_")), key=lambda k: int(k.split("_")[1]))
        return {**stages, "landmarks": stages.get(POSTERIOR_STAGE, stages[last])}
