"""Landmarks for every frame of a video file (any file OpenCV reads: .mp4, .avi, .mov, ...).

`predict_video` writes OUT/<stem>.jsonl, one line per frame in order,
`{"frame": i, "timestamp_ms": t, "faces": [{"box", "score", "landmarks", "visibility"}, ...]}`,
and OUT/<stem>.mp4 with the overlay, each written atomically when the video is done.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Callable, Iterator, Optional

import cv2
import numpy as np

from datasets.errors import DataError
from rar_keras.utils.atomic import write_atomically

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
DEFAULT_FPS = 30.0            # when the file does not say
OUTPUT_FOURCC = "mp4v"


def is_video(path) -> bool:
    return pathlib.Path(path).suffix.lower() in VIDEO_EXTENSIONS


def read_frames(path) -> tuple[Iterator[tuple[int, float, np.ndarray]], int, float]:
    """(frames as (index, timestamp ms, RGB uint8), frame count (0 if unknown), fps) of a video file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such video file")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DataError(f"{path}: OpenCV cannot read this video")
    count = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS

    def frames():
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield index, 1000.0 * index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                index += 1
        finally:
            capture.release()

    return frames(), count, fps


def predict_video(landmarker, path, out: Optional[pathlib.Path], draw: Callable, video_mode: bool = True,
                  progress=lambda items, **_: items, emit=print, boxes=None) -> int:
    """Runs `landmarker` on every frame; returns the number of frames.

    Args:
        landmarker: a `FaceLandmarker` (with `running_mode="video"` when `video_mode`).
        path: the video file.
        out: the output folder (None: the JSON lines go to `emit`, no video is written).
        draw: (RGB frame, LandmarkerResult) -> RGB overlay.
        video_mode: follow faces from frame to frame (`detect_for_video`), else every frame on its own.
        progress: wraps the frame iterator (a progress bar).
        emit: where JSON lines go when `out` is None.
        boxes: (K, 4) face boxes in image pixels instead of the detector (video mode: wherever the
            detector would run; image mode: every frame).
    """
    frames, count, fps = read_frames(path)
    stem = pathlib.Path(path).stem
    lines, writer, done, size = [], None, 0, None
    tmp_video = None
    if video_mode:
        landmarker.reset()
    try:
        for index, timestamp, frame in progress(frames, total=count or None, unit="frame"):
            result = (landmarker.detect_for_video(frame, timestamp, boxes=boxes) if video_mode
                      else landmarker.detect(frame, boxes=boxes))
            done += 1
            line = json.dumps({"frame": index, "timestamp_ms": round(timestamp, 3),
                               "faces": [face.to_dict() for face in result.faces]})
            if out is None:
                emit(line)
                continue
            lines.append(line)
            overlay = draw(frame, result)
            if writer is None:
                handle, tmp_video = tempfile.mkstemp(dir=out, prefix=f".{stem}.", suffix=".mp4")
                os.close(handle)
                size = (overlay.shape[1], overlay.shape[0])
                writer = cv2.VideoWriter(tmp_video, cv2.VideoWriter_fourcc(*OUTPUT_FOURCC), fps, size)
            if (overlay.shape[1], overlay.shape[0]) != size:   # overlays of small frames are enlarged
                overlay = cv2.resize(overlay, size, interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        if out is not None:
            write_atomically(out / f"{stem}.jsonl",
                             lambda tmp: pathlib.Path(tmp).write_text("\n".join(lines) + ("\n" if lines else "")))
            if writer is not None:
                writer.release()
                writer = None
                os.replace(tmp_video, out / f"{stem}.mp4")
                tmp_video = None
    finally:
        if writer is not None:
            writer.release()
        if tmp_video is not None and os.path.exists(tmp_video):
            os.remove(tmp_video)
    return done
