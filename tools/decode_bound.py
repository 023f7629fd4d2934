"""`python -m tools.decode_bound`: how much error the heatmap grid and the model's decode add by
themselves, on heatmaps as wide as the model's own.

    python -m tools.decode_bound --model w300_fast --data VAL_FACES --time

Each face is cropped around the box of its true landmarks and run through the Keras model. The
command prints, in % of the inter-pupil distance:
- the NME of the model's `S_d` (its decoded heatmaps, with the landmark offset the model adds) and
  of the same decode without the offset, and of the model's output;
- the spread of its heatmaps: the standard deviation of each landmark's spatial softmax, in cells
  (10th, 50th and 90th percentiles);
- the NME of the same decode (the model's own `HeatmapDecoder`) applied to ideal heatmaps: for every
  face and landmark a Gaussian centred on the true point, as wide as that landmark's heatmap is on
  that face.

The last figure is the error that the grid and the decode add to single-peaked heatmaps of the
model's width. Tails and second peaks of real heatmaps pull a soft-argmax further, and a different
network (finer heatmaps, an offset head) might also place its mass better: the figure bounds neither.

A model with an occluder mask and a second pass (`w300_base`, `w300_large`) is measured in one pass,
without the mask, so that `S_d`, its heatmaps and the output come from the same crop.

`--time` also times the model's decode alone, on its own grid and on one twice as fine (what
stride-2 heatmaps would decode), each converted to a float LiteRT file and run at one thread, the
two alternating in blocks; it prints the median time per decode.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from datasets.crops import crop_face
from datasets.errors import DataError
from datasets.geometry import apply_affine
from datasets.loaders import load_records
from datasets.record import landmark_box
from datasets.schemes import get_scheme
from eval.metrics import nme, normalizer
from rar_keras.utils.quiet import import_tensorflow, silenced_stderr

DEFAULT_LIMIT = 200
BATCH = 16
MIN_SPREAD = 1e-3          # cells: the narrowest ideal Gaussian (a softmax of one cell has spread 0)
TIMING_BLOCKS = 15
TIMING_RUNS = 50


def softmax_moments(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (N, L, 2) in cells (x, y) and isotropic spread (N, L) in cells of each heatmap's
    spatial softmax; `logits` (N, H, W, L). The spread is sqrt((var_x + var_y) / 2)."""
    logits = np.asarray(logits, np.float64)
    n, height, width, num = logits.shape
    flat = logits.reshape(n, height * width, num).transpose(0, 2, 1)
    probs = np.exp(flat - flat.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    grid_y, grid_x = np.divmod(np.arange(height * width), width)
    mean_x, mean_y = probs @ grid_x, probs @ grid_y
    var_x = (probs * (grid_x - mean_x[..., None]) ** 2).sum(-1)
    var_y = (probs * (grid_y - mean_y[..., None]) ** 2).sum(-1)
    return np.stack([mean_x, mean_y], -1), np.sqrt((var_x + var_y) / 2)


def ideal_logits(cells: np.ndarray, spread: np.ndarray, height: int, width: int) -> np.ndarray:
    """Logits (N, H, W, L) of a Gaussian at `cells` (N, L, 2), cell units (x, y), with standard
    deviation `spread` (N, L) cells, sampled at the cell centres."""
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float64)
    dx = grid_x[None, :, :, None] - cells[:, None, None, :, 0]
    dy = grid_y[None, :, :, None] - cells[:, None, None, :, 1]
    width = np.maximum(spread, MIN_SPREAD)[:, None, None, :]
    return -(dx ** 2 + dy ** 2) / (2.0 * width ** 2)


def crops_and_truth(path: str, size: int, margin: float, limit: int, scheme: str):
    """(crops (N, S, S, 3) float32, truth (N, L, 2) crop pixels) of up to `limit` faces at `path`,
    each cropped around the box of its true landmarks.

    Raises:
        DataError: no faces, or landmarks in another scheme than `scheme`.
    """
    records = load_records(path)[:limit]
    if not records:
        raise DataError(f"{path}: no faces found")
    if records[0].scheme != scheme:
        raise DataError(f"{path}: landmarks in the {records[0].scheme!r} scheme, the model predicts {scheme!r}")
    crops, truth = [], []
    for record in records:
        crop, matrix = crop_face(record.image, landmark_box(record.landmarks), size, margin)
        crops.append(crop)
        truth.append(apply_affine(record.landmarks, matrix))
    return np.stack(crops).astype(np.float32), np.stack(truth)


def measure(model, crops: np.ndarray, truth: np.ndarray, scheme) -> dict:
    """The figures for one model on its crops (see the module docstring), a batch at a time. A model
    with an occluder mask is measured without it: its `S_d` and heatmaps then come from one pass."""
    from rar_keras.layers.coordinates import pixels_to_cells
    from rar_keras.make_preset import with_settings

    if getattr(model, "occluder_mask", None) is not None:
        model = with_settings(model, {"occluder_mask": False})

    stride = model.config.heatmap_stride
    norms = normalizer(truth, scheme, "ip")
    spreads, errors = [], {"detected": [], "decoded": [], "output": [], "ideal": []}
    for start in range(0, len(crops), BATCH):
        result = model(crops[start:start + BATCH], training=False)
        logits = np.asarray(result["heatmaps"])
        spread = softmax_moments(logits)[1]
        cells = np.asarray(pixels_to_cells(truth[start:start + BATCH], stride))
        ideal = ideal_logits(cells, spread, logits.shape[1], logits.shape[2]).astype(np.float32)
        points = {"detected": np.asarray(result["detected"]), "decoded": np.asarray(model.decoder(logits)[0]),
                  "output": np.asarray(result["landmarks"]), "ideal": np.asarray(model.decoder(ideal)[0])}
        for name, predicted in points.items():
            errors[name].append(nme(predicted, truth[start:start + BATCH], norms[start:start + BATCH]))
        spreads.append(spread.ravel())
    spreads = np.concatenate(spreads)
    figures = {"faces": len(crops), "cell_pct_ip": float(100 * np.mean(stride / norms)),
               "spread_cells": {f"p{q}": float(np.percentile(spreads, q)) for q in (10, 50, 90)}}
    figures.update({f"{name}_nme_ip": float(100 * np.concatenate(values).mean()) for name, values in errors.items()})
    return figures


def decode_latency(decoder, num_landmarks: int, sides: Sequence[int], blocks: int = TIMING_BLOCKS,
                   runs: int = TIMING_RUNS) -> dict:
    """{side: median ms per call} of `decoder` (a `HeatmapDecoder`) alone on (1, side, side, L)
    logits, each side converted to a float LiteRT file and run at one thread, the sides
    alternating in blocks of `runs` calls."""
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from rar_keras.layers.heatmap_decoder import HeatmapDecoder

    runners = {}
    for side in sides:
        inputs = keras.Input((side, side, num_landmarks), batch_size=1)
        config = {**decoder.get_config(), "name": f"decode_{side}"}
        outputs = HeatmapDecoder.from_config(config)(inputs)
        with contextlib.redirect_stdout(io.StringIO()), silenced_stderr():     # the converter's notes
            content = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, list(outputs))).convert()
            interpreter = Interpreter(model_content=content, num_threads=1)
            interpreter.allocate_tensors()
        logits = np.random.default_rng(side).normal(size=(1, side, side, num_landmarks)).astype(np.float32)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], logits)
        runners[side] = interpreter
    times = {side: [] for side in sides}
    for _ in range(blocks):
        for side, interpreter in runners.items():
            interpreter.invoke()
            start = time.perf_counter()
            for _ in range(runs):
                interpreter.invoke()
            times[side].append((time.perf_counter() - start) / runs * 1e3)
    return {side: float(np.median(values)) for side, values in times.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.decode_bound", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a preset or .keras file")
    parser.add_argument("--data", required=True, help="faces with landmarks (a 300-W folder, an annotation file)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="the first N faces")
    parser.add_argument("--time", action="store_true",
                        help="also time the decode alone on the model's grid and on one twice as fine")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.limit <= 0:
        parser.error(f"--limit must be positive, got {args.limit}")
    if not os.path.exists(args.data):
        parser.error(f"--data {args.data}: no such file or folder")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        import_tensorflow()
        from rar_keras.inference.keras_model import load_model

        model = load_model(args.model)
        scheme = get_scheme(model.config.scheme)
        crops, truth = crops_and_truth(args.data, model.config.input_size, model.config.margin, args.limit,
                                       scheme.name)
        figures = measure(model, crops, truth, scheme)
        if args.time:
            side = model.config.heatmap_size
            latency = decode_latency(model.decoder, scheme.num_points, (side, 2 * side))
            figures["decode_ms"] = {f"{s}x{s}": ms for s, ms in latency.items()}
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    spread = figures["spread_cells"]
    print(f"{figures['faces']} faces; one heatmap cell is {figures['cell_pct_ip']:.1f} % of the inter-pupil "
          f"distance; heatmap spread {spread['p10']:.2f} / {spread['p50']:.2f} / {spread['p90']:.2f} cells "
          "(10th / 50th / 90th percentile)\n"
          "| NME ip % | |\n|---|---|\n"
          f"| the model's `S_d` (its decoded heatmaps, with its landmark offset) | {figures['detected_nme_ip']:.3f} |\n"
          f"| the same decode without the offset | {figures['decoded_nme_ip']:.3f} |\n"
          f"| the model's output | {figures['output_nme_ip']:.3f} |\n"
          f"| ideal heatmaps (a Gaussian at the true point, as wide as each heatmap), the same decode | "
          f"{figures['ideal_nme_ip']:.3f} |")
    for grid, ms in figures.get("decode_ms", {}).items():
        print(f"the decode alone on {grid} cells: {ms:.3f} ms (float LiteRT, one thread, median of "
              f"{TIMING_BLOCKS} blocks of {TIMING_RUNS} calls)")
    if args.out:
        from rar_keras.utils.atomic import write_bytes_atomically

        write_bytes_atomically(args.out, json.dumps(figures, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
