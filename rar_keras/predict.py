"""Command line: landmarks for images or folders of images, as JSON and overlay pictures.

    python -m rar_keras.predict IMAGE_OR_DIR... [--model PRESET_OR_FILE] [--box x0,y0,x1,y1]
                                [--detector blazeface|yunet:PATH] [--out DIR]

Without --out, one JSON document per image is printed to stdout (one per line)
and nothing is written. With --out, each image gets DIR/<name>.json and an
overlay DIR/<name>.png (prediction in red), each written atomically. An image
without a face gives an empty "faces" list, not an error. User errors (missing
or unreadable image, bad --box, unknown model) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # keep TensorFlow's start-up chatter off stderr

from datasets.errors import DataError  # noqa: E402
from rar_keras.utils.atomic import write_bytes_atomically  # noqa: E402
from rar_keras.inference.face_landmarker import DEFAULT_DETECTOR, DEFAULT_PRESET, image_files  # noqa: E402

EXIT_USER_ERROR = 2
BOX_FIELDS = 4
BOX_COLOR_RGB = (255, 200, 0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rar_keras.predict",
                                     description="Facial landmarks for images (JSON + overlay PNG).")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    parser.add_argument("--model", default=DEFAULT_PRESET, help="preset name or folder, or a .keras, .tflite or .onnx file (default %(default)s)")
    parser.add_argument("--box", action="append", metavar="x0,y0,x1,y1",
                        help="face box in image pixels, skips the detector (repeat for several faces)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help="blazeface (default), blazeface:full, blazeface:short or yunet:PATH")
    parser.add_argument("--min-score", type=float, default=None, help="minimum detector score")
    parser.add_argument("--max-faces", type=int, default=None, help="at most this many faces per image")
    parser.add_argument("--flip", action="store_true",
                        help="flip test: average with the landmarks of the mirrored face (twice the compute)")
    parser.add_argument("--out", metavar="DIR", help="write <name>.json and <name>.png here instead of stdout")
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
    import cv2

    from datasets.schemes import get_scheme
    from rar_keras.inference.overlay import (OCCLUDED_BELOW, OCCLUDED_COLOR_RGB, PRED_COLOR_RGB, draw_legend,
                                             draw_overlay, marker_radius)

    scheme = get_scheme(result.scheme)
    canvas = np.ascontiguousarray(image)
    for face in result.faces:
        scale = canvas.shape[1] / image.shape[1]
        canvas = draw_overlay(canvas, face.landmarks * scale, None, scheme, visibility=face.visibility,
                              legend=False)
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
    import cv2

    from datasets.images import read_image

    write_bytes_atomically(out / f"{stem}.json", (json.dumps(result.to_dict(), indent=1) + "\n").encode())
    canvas = draw_faces(read_image(result.image_path), result)
    ok, png = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode the overlay of {result.image_path}")
    write_bytes_atomically(out / f"{stem}.png", png.tobytes())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions

    boxes = [parse_box(text) for text in args.box] if args.box else None
    paths = expand_inputs(args.inputs)
    out = pathlib.Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    extra = {k: v for k, v in (("min_face_score", args.min_score), ("max_faces", args.max_faces)) if v is not None}
    landmarker = FaceLandmarker.create(LandmarkerOptions(model=args.model, detector=args.detector,
                                                         flip_test=args.flip, **extra))
    per_image = None if boxes is None else [boxes] * len(paths)
    results = landmarker.iter_results(paths, per_image)
    used: set = set()
    for result in tqdm(results, total=len(paths), unit="image", disable=len(paths) <= 1, file=sys.stderr):
        if out is None:
            print(json.dumps(result.to_dict()), flush=True)
        else:
            save_result(out, output_stem(result.image_path, used), result)
    if out is not None:
        print(f"wrote {len(paths)} result(s) to {out}", file=sys.stderr)
    return 0


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
