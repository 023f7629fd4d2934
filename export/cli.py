"""`python -m export`: a trained model (preset or .keras) to one .tflite or .onnx file.

    python -m export --model w300_mobile --format tflite --quantize int8 \\
        --calibration $RAR_KERAS_DATA/300w/lfpw/trainset --out w300_mobile_int8.tflite

User errors (missing model file, unknown format, int8 without calibration
data) print one line on stderr and exit with status 2, without a traceback.

Every file is checked against the Keras model before it is written, whatever the
format: on the first 32 faces of `--calibration` (real faces), or without it on the
two bundled faces and their mirror images (`export.calibration.bundled_check_crops`).
Its landmarks' NME (ip, %) measured against the Keras landmarks must stay within
`--max-nme-vs-keras` (by default `PARITY_TOLERANCE` of the mode). A file that fails is not written: the
command prints why on stderr and exits with status 3, and `--out` keeps what it
held before. A failed conversion (or a file that needs ops outside LiteRT's
builtin set) exits with status 1, also in one line.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from datasets.errors import DataError
from datasets.schemes import get_scheme
from export.calibration import bundled_check_crops, calibration_crops
from rar_keras.inference.keras_model import load_model
from rar_keras.inference.model_spec import KERAS, PRESET, resolve_model_spec
from rar_keras.inference.quality import read_quality
from rar_keras.presets.loader import config_digest, weights_digest
from rar_keras.utils.atomic import write_atomically
from rar_keras.utils.quiet import import_tensorflow

FORMATS = ("tflite", "onnx")
# Largest NME (ip, %) of an exported file's landmarks measured against the Keras model's own, per
# `--quantize`: float files differ by rounding only (about 0.01 % for the shipped presets' fp16
# files), quantized ones by their quantization (0.37-0.41 % for the presets' int8 files, 1-1.3 % for
# the tests' tiny model).
PARITY_TOLERANCE = {"none": 0.5, "fp16": 0.5, "dynamic": 3.0, "int8": 3.0}
PARITY_FACES = 32
QUANTIZE = ("none", "fp16", "dynamic", "int8")
INT8_SCHEMES = ("cnn_dense", "cnn", "cnn_heads", "full")  # export.tflite.INT8_SCHEMES, first = default
EXPORT_ERROR = 1      # the converter failed, or the file needs ops outside LiteRT's builtin set
USAGE_ERROR = 2
PARITY_ERROR = 3      # the file was made but disagrees with Keras: not written


class UsageError(Exception):
    """A mistake in the command line or its inputs: one line, exit status 2."""


class ExportFailed(Exception):
    """The converter failed, or the file needs ops outside LiteRT's builtin set: exit status 1."""


class ParityError(Exception):
    """The exported file disagrees with the Keras model beyond the tolerance: exit status 3."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m export", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a preset name or a .keras file")
    parser.add_argument("--format", required=True, help="tflite or onnx")
    parser.add_argument("--quantize", default="none", help="none, fp16, dynamic or int8 (TFLite only)")
    parser.add_argument("--out", required=True, help="the file to write (.tflite or .onnx)")
    parser.add_argument("--calibration", default=None,
                        help="a dataset of real faces (e.g. a 300-W folder of image + .pts pairs): int8 calibrates "
                             f"on them, and the file is checked against Keras on the first {PARITY_FACES} "
                             "(without it, on the two bundled faces and their mirrors)")
    parser.add_argument("--calibration-size", type=int, default=100, help="int8: faces used to calibrate")
    parser.add_argument("--int8-scheme", default=INT8_SCHEMES[0],
                        help="int8: what stays float: cnn_dense (default; the geometric head, its learned matrix "
                             "products in int8), cnn (the whole head), cnn_heads (also conv8 and the SIP "
                             "features), full (nothing)")
    parser.add_argument("--int8-front", default="float",
                        help="int8, every scheme but full: float (default; the backbone's input normalisation, "
                             "stem and first stage, at half resolution, stay float: faster and closer to Keras "
                             "in this project's timing runs) or int8")
    parser.add_argument("--max-nme-vs-keras", type=float, default=None,
                        help="the largest NME (ip, %%) of the file's landmarks against the "
                             "Keras model's that is written (default: " +
                             ", ".join(f"{mode} {value}" for mode, value in PARITY_TOLERANCE.items()) + ")")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    parser.add_argument("--batch", type=int, default=None,
                        help="fixed batch size of the input (default 1 for TFLite, free for ONNX; 0 = free)")
    return parser


def _check_args(args) -> None:
    if args.format not in FORMATS:
        raise UsageError(f"--format {args.format!r}: unknown format, use one of {', '.join(FORMATS)}")
    if args.quantize not in QUANTIZE:
        raise UsageError(f"--quantize {args.quantize!r}: use one of {', '.join(QUANTIZE)}")
    if args.format == "onnx" and args.quantize != "none":
        raise UsageError(f"--quantize {args.quantize}: ONNX export is float32 only (use --format tflite)")
    if args.int8_scheme not in INT8_SCHEMES:
        raise UsageError(f"--int8-scheme {args.int8_scheme!r}: use one of {', '.join(INT8_SCHEMES)}")
    if args.int8_front not in ("float", "int8"):
        raise UsageError(f"--int8-front {args.int8_front!r}: use float or int8")
    if args.quantize == "int8" and not args.calibration:
        raise UsageError("--quantize int8 needs --calibration DATA (real faces, e.g. a 300-W folder)")
    if args.calibration and not os.path.exists(args.calibration):
        raise UsageError(f"--calibration {args.calibration}: no such file or folder")
    if args.calibration_size <= 0:
        raise UsageError(f"--calibration-size must be positive, got {args.calibration_size}")
    if args.max_nme_vs_keras is not None and not args.max_nme_vs_keras > 0:
        raise UsageError(f"--max-nme-vs-keras must be a positive percentage, got {args.max_nme_vs_keras}")
    suffix = pathlib.Path(args.out).suffix.lower()
    if suffix != f".{args.format}":
        raise UsageError(f"--out {args.out}: expected a .{args.format} file for --format {args.format}")

    try:
        resolve_model_spec(args.model, (PRESET, KERAS), "--model")
    except DataError as error:
        raise UsageError(str(error)) from None


def _load(spec: str):
    try:
        return load_model(spec, "--model")
    except (DataError, ValueError) as error:  # unknown preset names raise ValueError
        raise UsageError(f"--model: {error}") from None


def _contract_extra(spec: str) -> dict:
    """What the file's contract records of its source: where the weights come from, and a preset's
    quality model."""
    resolved = resolve_model_spec(spec, (PRESET, KERAS), "--model")
    if resolved.kind != PRESET:
        return {"source": {"file": resolved.path.name}}
    quality = read_quality(resolved.path)
    return {"source": {"preset": resolved.path.name, "weights_sha256": weights_digest(resolved.path),
                       "config_sha256": config_digest(resolved.path)},
            **({"quality": quality.to_dict()} if quality else {})}


def run(args) -> str:
    _check_args(args)
    import_tensorflow(args.verbose)
    model = _load(args.model)
    extra = _contract_extra(args.model)
    batch = args.batch if args.batch is not None else (1 if args.format == "tflite" else 0)
    batch = batch or None
    crops = None
    if args.calibration:
        try:
            crops = calibration_crops(args.calibration, model.config.input_size, model.config.margin,
                                      args.calibration_size)
        except DataError as error:
            raise UsageError(f"--calibration {args.calibration}: {error}") from None
        check_faces = (crops, "calibration faces")
    else:
        try:
            bundled = bundled_check_crops(model.config.input_size, model.config.margin, batch or 1)
        except DataError as error:
            raise UsageError(f"the bundled check faces cannot be read ({error}); pass --calibration DATA "
                             "(real faces) instead") from None
        check_faces = (bundled, "bundled faces")
    out = pathlib.Path(args.out)
    summary = []

    def write_checked(path):
        """Exports to the temporary `path` and checks it there: `--out` is replaced only if both pass."""
        detail = _export(args, model, path, crops, batch, extra)
        line = f"({pathlib.Path(path).stat().st_size / 1e3:.1f} kB, {args.format} {args.quantize}, {detail})"
        line += "; " + _parity_check(args, model, path, check_faces, batch)
        summary.append(line)

    write_atomically(out, write_checked)
    return f"wrote {out} {summary[0]}"


def _export(args, model, path, crops, batch, extra) -> str:
    """Writes the file at `path`; returns what the summary line says of its ops."""
    # TensorFlow loads only after the arguments are checked.
    from export import checks

    if args.format == "tflite":
        from export.tflite import ConversionError, export_tflite, representative_dataset

        calibration = representative_dataset(crops) if crops is not None else None
        try:
            export_tflite(model, path, args.quantize, calibration, batch, args.int8_scheme, extra=extra,
                          float_front=args.int8_front == "float")
            ops = checks.check_builtin_only(path)
        except (ConversionError, checks.ExportCheckError) as error:
            raise ExportFailed(f"{args.out}: not written: {error}") from error
        return f"{len(ops)} builtin op types, no Flex/custom/WHILE"
    from export.onnx import OnnxExportError, export_onnx

    try:
        export_onnx(model, path, batch, extra=extra)
    except OnnxExportError as error:
        raise ExportFailed(f"{args.out}: not written: {error}") from error
    return "opset 17"


def _parity_check(args, model, path, check_faces, batch) -> str:
    """Runs the file at `path` and the Keras model on the first faces (a multiple of the file's fixed
    `batch`); raises `ParityError` when the file's landmarks are off the Keras ones by more than the
    tolerance, else returns the summary.

    Args:
        args: the command line.
        model: the Keras model.
        path: the exported file.
        check_faces: (crops (N, S, S, 3), what they are, e.g. "calibration faces").
        batch: the file's fixed batch, or None.
    """
    from export import checks, graph

    crops, source = check_faces
    per_call = batch or 1
    sample = crops[:min(max(PARITY_FACES, per_call), len(crops)) // per_call * per_call]
    if len(sample) == 0:
        given = f"--calibration {args.calibration}" if args.calibration else "the bundled faces"
        raise UsageError(f"--batch {batch}: the check against Keras needs at least {batch} faces, "
                         f"{given} gave {len(crops)}")
    result = checks.parity(graph.keras_reference(model, sample), checks.run_file(path, sample),
                           get_scheme(model.config.scheme))
    nme = result["nme_ip_vs_keras"]
    tolerance = args.max_nme_vs_keras if args.max_nme_vs_keras is not None else PARITY_TOLERANCE[args.quantize]
    summary = f"vs Keras on {len(sample)} {source}: NME {nme:.3f} % ip, max {result['max_px']:.3f} px"
    if not nme <= tolerance:
        raise ParityError(f"{args.out}: not written: the {args.format} {args.quantize} file disagrees with the "
                          f"Keras model ({summary}; at most {tolerance} % allowed, --max-nme-vs-keras)")
    return summary


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        print(run(args))
    except (UsageError, ExportFailed, ParityError) as error:
        print(f"error: {error}", file=sys.stderr)
        return {UsageError: USAGE_ERROR, ExportFailed: EXPORT_ERROR, ParityError: PARITY_ERROR}[type(error)]
    return 0
