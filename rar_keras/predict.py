"""Command line: landmarks for images, folders of images and videos, as JSON and overlays.

    python -m rar_keras.predict IMAGE_OR_DIR_OR_VIDEO... [--model PRESET_OR_FILE] [--box x0,y0,x1,y1]
                                [--detector yunet|blazeface|yunet:PATH] [--mode video|image] [--out DIR]

Without --out, one JSON document per image is printed to stdout (one per line)
and nothing is written. With --out, each image gets DIR/<name>.json and an
overlay DIR/<name>.png (landmarks in red, occluded ones as orange rings), each
written atomically. An image without a face gives an empty "faces" list, not an
error. Among several files, one that cannot be read (or whose --box does not
fit it) is named on stderr with the reason and the run goes on with the next
one; the exit code is then 1. Errors in the command itself (bad --box, unknown
model), or a single input file that fails, print one line on stderr and exit 2.

A video (.mp4, .avi, .mov, ...) gives DIR/<name>.jsonl, one line per frame
({"frame", "timestamp_ms", "faces"}), and DIR/<name>.mp4 with the overlay. In
video mode (the default) faces are followed from frame to frame and their
landmarks smoothed; --mode image treats every frame on its own. --box stands in
for the detector (in video mode, wherever the detector would run).

A preset runs its shipped .tflite in LiteRT: no TensorFlow is loaded unless
--runtime keras asks for the Keras model.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.images import read_image
from datasets.schemes import get_scheme
from rar_keras.inference.crop_models import RUNTIMES, uses_keras
from rar_keras.inference.face_landmarker import (DEFAULT_DETECTOR, DEFAULT_PRESET, FaceLandmarker,
                                                 LandmarkerOptions, check_user_boxes, image_files, load_image)
from rar_keras.inference.overlay import (OCCLUDED_BELOW, OCCLUDED_COLOR_RGB, PRED_COLOR_RGB, draw_legend,
                                         draw_overlay, marker_radius)
from rar_keras.inference.video import is_video, predict_video
from rar_keras.presets.loader import list_presets
from rar_keras.utils.atomic import write_bytes_atomically
from rar_keras.utils.quiet import import_tensorflow

EXIT_USER_ERROR = 2
EXIT_SOME_FILES_FAILED = 1
BOX_FIELDS = 4
BOX_COLOR_RGB = (255, 200, 0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.predict",
                                     description="Facial landmarks for images (JSON + overlay PNG).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR_OR_VIDEO",
                        help="image files, folders of images, video files")
    parser.add_argument("--model", default=DEFAULT_PRESET,
                        help="a shipped preset (" + ", ".join(list_presets()) + "), a preset folder, or a "
                             ".keras, .tflite or .onnx file")
    parser.add_argument("--runtime", default="auto", choices=RUNTIMES,
                        help="a preset runs its .tflite in LiteRT (auto, litert) or in Keras (keras)")
    parser.add_argument("--box", action="append", metavar="x0,y0,x1,y1",
                        help="face box in image pixels, skips the detector (repeat for several faces)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help="yunet (bundled), blazeface, blazeface:full, blazeface:short or yunet:PATH")
    parser.add_argument("--min-score", type=float, default=None, help="minimum detector score (default 0.5)")
    parser.add_argument("--max-faces", type=int, default=None, help="at most this many faces per image")
    parser.add_argument("--flip", action="store_true",
                        help="flip test: average with the landmarks of the mirrored face (twice the compute)")
    parser.add_argument("--mode", default="video", choices=("video", "image"),
                        help="videos: follow faces from frame to frame (video) or every frame on its own")
    parser.add_argument("--out", metavar="DIR", help="write <name>.json and <name>.png here instead of stdout")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and LiteRT's own log lines")
    return parser.parse_args(argv)


def parse_box(text: str) -> list[float]:
    """'x0,y0,x1,y1' -> four floats (DataError naming the text otherwise)."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != BOX_FIELDS or not np.isfinite(values).all():
        raise DataError(f"--box {text!r}: expected four numbers x0,y0,x1,y1 separated by commas")
    if values[2] <= values[0] or values[3] <= values[1]:   # caught before the model loads
        raise DataError(f"--box {text!r}: zero or negative size; expected x1 > x0 and y1 > y0")
    return values


def expand_inputs(inputs: list[str]) -> list[str]:
    """Image paths: files as given, folders expanded to their image files; DataError when missing."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = image_files(item)
            if not found:
                raise DataError(f"{item}: folder holds no image files")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise DataError(f"{item}: no such image file or folder")
    return paths


def draw_faces(image: np.ndarray, result) -> np.ndarray:
    """RGB overlay: every face's landmarks (`rar_keras.inference.overlay`) and its box."""
    scheme = get_scheme(result.scheme)
    canvas = np.ascontiguousarray(image)
    for face in result.faces:
        scale = canvas.shape[1] / image.shape[1]
        canvas = draw_overlay(canvas, face.landmarks * scale, None, scheme, visibility=face.visibility,
                              legend=False)
        scale = canvas.shape[1] / image.shape[1]           # small images come back enlarged
        x0, y0, x1, y1 = (int(round(v * scale)) for v in face.box)
        thickness = max(1, marker_radius(face.landmarks * scale) // 2)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), BOX_COLOR_RGB, thickness, cv2.LINE_AA)
    if result.faces:
        draw_legend(canvas, [("landmarks", PRED_COLOR_RGB), ("face box", BOX_COLOR_RGB)]
                    + [("occluded", OCCLUDED_COLOR_RGB)] * any(
                        f.visibility is not None and (f.visibility < OCCLUDED_BELOW).any() for f in result.faces))
    return canvas


def output_stem(path: str, used: set) -> str:
    """The image's file stem, made unique among the outputs already written."""
    stem = base = pathlib.Path(path).stem
    suffix = 1
    while stem in used:
        stem, suffix = f"{base}_{suffix}", suffix + 1
    used.add(stem)
    return stem


def save_result(out: pathlib.Path, stem: str, result) -> None:
    write_bytes_atomically(out / f"{stem}.json", (json.dumps(result.to_dict(), indent=1) + "\n").encode())
    canvas = draw_faces(read_image(result.image_path, orientation=True), result)
    ok, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode the overlay of {result.image_path}")
    write_bytes_atomically(out / f"{stem}.png", png.tobytes())


def check_single_image(path: str, boxes) -> None:
    """Reads the one image asked for and checks its boxes against it before the model loads, so that
    a bad file or box is reported at once, not after the runtime has started (DataError, OSError)."""
    pixels, _ = load_image(path, "image 0")
    if boxes is not None:
        check_user_boxes(boxes, pixels, path)


def run(args: argparse.Namespace) -> int:
    boxes = [parse_box(text) for text in args.box] if args.box else None
    paths = expand_inputs(args.inputs)
    videos = [p for p in paths if is_video(p)]
    paths = [p for p in paths if not is_video(p)]
    one_file = len(args.inputs) == 1 and not os.path.isdir(args.inputs[0])
    if one_file and paths:
        check_single_image(paths[0], boxes)
    out = pathlib.Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if uses_keras(args.model, args.runtime):
        import_tensorflow(args.verbose)
    extra = {k: v for k, v in (("min_face_score", args.min_score), ("max_faces", args.max_faces)) if v is not None}
    # One landmarker serves both: `detect` (images) ignores the running mode, which only enables
    # `detect_for_video`.
    landmarker = FaceLandmarker.create(LandmarkerOptions(model=args.model, detector=args.detector,
                                                         runtime=args.runtime, flip_test=args.flip,
                                                         running_mode=args.mode, **extra))
    used: set = set()
    failed = []
    if videos:
        failed += run_videos(landmarker, videos, out, args.mode == "video", boxes)
    for path in tqdm(paths, unit="image", disable=len(paths) <= 1, file=sys.stderr):
        try:
            result = landmarker.detect(path, boxes=boxes)
            if out is None:
                print(json.dumps(result.to_dict()), flush=True)
            else:
                save_result(out, output_stem(result.image_path, used), result)
        except (DataError, OSError) as error:     # one bad file does not stop a folder run
            failed.append(path)
            tqdm.write(f"error: {error}", file=sys.stderr)
    total = len(paths) + len(videos)
    if one_file and failed:               # the one file asked for: a user error, said once above
        return EXIT_USER_ERROR
    if out is not None:
        print(f"wrote {total - len(failed)} result(s) to {out}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {total} file(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_SOME_FILES_FAILED
    return 0


def run_videos(landmarker: FaceLandmarker, videos: list, out: Optional[pathlib.Path], video_mode: bool,
               boxes=None) -> list:
    """Every video through the landmarker (followed from frame to frame when `video_mode`);
    returns the failed ones."""
    failed = []
    for path in videos:
        try:
            frames = predict_video(landmarker, path, out, draw_faces, video_mode=video_mode,
                                   progress=lambda items, **kw: tqdm(items, file=sys.stderr, desc=path, **kw),
                                   emit=lambda line: print(line, flush=True), boxes=boxes)
            print(f"{path}: {frames} frames", file=sys.stderr)
        except (DataError, OSError) as error:
            failed.append(path)
            print(f"error: {error}", file=sys.stderr)
    return failed


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
