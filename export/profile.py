"""`python -m export.profile FILE...`: where `.tflite` files spend their time, layer by layer.

    python -m export.profile rar_int8.tflite [more.tflite ...] [--reference face_landmark.tflite] [--blocks 20]

LiteRT's Python wheel has no op profiler, so this one times the file cut short. The
graph is truncated after the last op of each layer: the ops after it are dropped, and
that op's output becomes the graph's output. Every truncated copy, the whole file and
the reference are timed in alternating blocks, as in `export.benchmark`, on one thread
by default. A latency is the median over blocks of each block's median. Several files are
profiled one after the other, each against the reference in its own alternating run.

A layer's time is the difference between two consecutive cuts: the ops between them.
Ops that read constants only count with the next op that does not. In an fp16 file these are
the DEQUANTIZE ops of its weights: LiteRT computes them once, when it prepares the graph, and a
file cut right after one ends in a weight, which XNNPACK refuses to run. The converter puts them
all first, so the first segment's op count includes them. A converter may place a few ops of one
layer among another's ops. The table therefore gives the number of ops in each segment. It also
gives the cumulative time as a multiple of the reference's, which is what the phone budget is
stated in.

A layer is the name scope `--depth` levels below the model, e.g.
`rar_landmarker_1/attentive_refiner_1/...` gives `attentive_refiner` at depth 1. An op
whose tensor names carry no scope counts with the op before it.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys
import tempfile
from typing import Optional

import numpy as np

from export.benchmark import INSTALL_HINT, find_reference, interleaved_latency, progress_bar
from export.machine import describe_cpu

SUFFIX = re.compile(r"_\d+$")          # the name-scope counter TensorFlow appends
FILE_IDENTIFIER = b"TFL3"                # bytes 4-8 of every LiteRT flatbuffer


def op_layers(names: list[str], depth: int = 1) -> list[str]:
    """The layer of each op, from the name of its first output tensor (see the module docstring).

    Args:
        names: one tensor name per op, in execution order.
        depth: scope levels below the model that name a layer.
    """
    layers, previous = [], "(input)"
    for name in names:
        parts = name.split(";")[0].split("/")
        if len(parts) > depth:
            previous = "/".join(SUFFIX.sub("", part) for part in parts[1:1 + depth])
        layers.append(previous)
    return layers


def layer_cuts(layers: list[str]) -> list[tuple[str, int]]:
    """(layer, cut) in execution order: the graph is cut after each layer's last op (`cut` ops kept).

    Layers are ordered by their last op; the last cut keeps every op.
    """
    last = {layer: index for index, layer in enumerate(layers)}
    return [(layer, index + 1) for layer, index in sorted(last.items(), key=lambda item: item[1])]


def truncated_model(content: bytes, keep: int) -> bytes:
    """The `.tflite` flatbuffer `content` with only the first `keep` ops of its main graph; the
    outputs of the last op kept are the graph's outputs (signatures are dropped)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    if not 1 <= keep <= len(graph.operators):
        raise ValueError(f"keep must be between 1 and the {len(graph.operators)} ops, got {keep}")
    graph.operators = graph.operators[:keep]
    graph.outputs = [int(index) for index in graph.operators[-1].outputs]
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def constant_ops(content: bytes) -> list[bool]:
    """Whether each op of the main graph of the flatbuffer `content` reads constants only, directly
    or through other such ops (e.g. the DEQUANTIZE of an fp16 weight), in execution order.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    graph = model.subgraphs[0]
    stored = [model.buffers[tensor.buffer].data for tensor in graph.tensors]
    constant = {index for index, data in enumerate(stored) if data is not None and len(data)}
    flags = []
    for op in graph.operators:
        inputs = [int(index) for index in op.inputs if index >= 0]
        reads_constants_only = bool(inputs) and all(index in constant for index in inputs)
        if reads_constants_only:
            constant.update(int(index) for index in op.outputs)
        flags.append(reads_constants_only)
    return flags


def constants_join_their_reader(layers: list[str], constant: list[bool]) -> list[str]:
    """`layers` with each constant-only op given the layer of the next op that is not one, so that no
    cut but the last (which keeps every op) ends on a constant-only op.

    Args:
        layers: the layer of each op, in execution order (`op_layers`).
        constant: whether each op reads constants only (`constant_ops`).

    Trailing constant-only ops take the layer of the last op before them that is not one (their
    own when there is none).
    """
    readers = [index for index, flag in enumerate(constant) if not flag]
    joined, following = list(layers), (layers[readers[-1]] if readers else None)
    for index in range(len(layers) - 1, -1, -1):
        if not constant[index]:
            following = layers[index]
        elif following is not None:
            joined[index] = following
    return joined


def op_output_names(content: bytes) -> list[str]:
    """The name of each op's first output tensor in the main graph of the flatbuffer `content`, in
    execution order."""
    from ai_edge_litert.tools import flatbuffer_utils

    graph = flatbuffer_utils.read_model_from_bytearray(bytearray(content)).subgraphs[0]
    names = [tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
             for tensor in graph.tensors]
    return [names[op.outputs[0]] if len(op.outputs) else "" for op in graph.operators]


def profile(path, reference=None, depth: int = 1, threads: int = 1, blocks: int = 20,
            runs: int = 20, progress=lambda items, **_: items) -> dict:
    """Times `path` cut after each layer (and `reference`, if given).

    Args:
        path: the `.tflite` file.
        reference: another `.tflite` file to express times against, or None.
        depth: see `op_layers`.
        threads: LiteRT threads.
        blocks, runs: alternating timing blocks and timed invokes per block.
        progress: wraps the blocks' range (`export.benchmark.interleaved_latency`).

    Returns: {"segments": [{"layer", "ops", "ms", "cumulative_ms"}], "total_ms", "reference_ms"}.
    """
    path = pathlib.Path(path)
    content = path.read_bytes()
    names = op_output_names(content)
    cuts = layer_cuts(constants_join_their_reader(op_layers(names, depth), constant_ops(content)))
    size = None                               # interleaved_latency's size matters for ONNX files only
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for layer, keep in cuts[:-1]:
            files[layer] = pathlib.Path(tmp) / f"cut_{keep}.tflite"
            files[layer].write_bytes(truncated_model(content, keep))
        files[cuts[-1][0]] = path                              # the last cut is the whole file
        if reference is not None:
            files["(reference)"] = pathlib.Path(reference)
        medians = interleaved_latency(files, size, threads, blocks, runs, progress=progress)
    segments, previous_ms, previous_keep = [], 0.0, 0
    for layer, keep in cuts:
        cumulative = float(np.median(medians[layer]))
        segments.append({"layer": layer, "ops": keep - previous_keep, "ms": cumulative - previous_ms,
                         "cumulative_ms": cumulative})
        previous_ms, previous_keep = cumulative, keep
    reference_ms = float(np.median(medians["(reference)"])) if reference is not None else None
    return {"segments": segments, "total_ms": segments[-1]["cumulative_ms"], "reference_ms": reference_ms}


def format_profile(result: dict) -> str:
    """A Markdown table of `profile`'s result."""
    reference = result["reference_ms"]
    header = "| layer (ops up to its last) | ops | ms | % of the file | cumulative ms |"
    rule = "|---|---|---|---|---|"
    if reference:
        header += " cumulative / reference |"
        rule += "---|"
    lines = [header, rule]
    for segment in result["segments"]:
        line = (f"| {segment['layer']} | {segment['ops']} | {segment['ms']:.3f} | "
                f"{100 * segment['ms'] / result['total_ms']:.0f} | {segment['cumulative_ms']:.3f} |")
        if reference:
            line += f" {segment['cumulative_ms'] / reference:.2f} |"
        lines.append(line)
    if reference:
        lines.append(f"| reference | | {reference:.3f} | | | 1 |")
    return "\n".join(lines)


def _file_problem(path: pathlib.Path) -> Optional[str]:
    """Why `path` cannot be profiled, or None."""
    if path.suffix != ".tflite" or not path.is_file():
        return "expected an existing .tflite file"
    with open(path, "rb") as file:
        if file.read(8)[4:8] != FILE_IDENTIFIER:
            return f"not a LiteRT flatbuffer (no {FILE_IDENTIFIER.decode()} identifier)"
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m export.profile", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("files", nargs="+", help="the .tflite files to profile")
    parser.add_argument("--reference", default=None,
                        help="a .tflite file to compare with (default: MediaPipe's face_landmark.tflite "
                             "when installed; 'none' for no reference)")
    parser.add_argument("--depth", type=int, default=1, help="name-scope levels below the model per layer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=20, help="alternating timing blocks")
    parser.add_argument("--runs", type=int, default=20, help="timed invokes per block (median)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = [pathlib.Path(file) for file in args.files]
    for path in paths:
        problem = _file_problem(path)
        if problem:
            print(f"error: {path}: {problem}", file=sys.stderr)
            return 2
    print(f"CPU: {describe_cpu()}")
    reference: Optional[pathlib.Path]
    if args.reference == "none":
        reference = None
    elif args.reference:
        reference = pathlib.Path(args.reference)
        problem = _file_problem(reference)
        if problem:
            print(f"error: --reference {reference}: {problem}", file=sys.stderr)
            return 2
    else:
        reference = find_reference()
        if reference is None:
            print(f"note: {INSTALL_HINT}; profiling without a reference")
    if args.depth < 1 or args.blocks < 1 or args.runs < 1:
        print("error: --depth, --blocks and --runs must be at least 1", file=sys.stderr)
        return 2
    for path in paths:
        result = profile(path, reference, args.depth, args.threads, args.blocks, args.runs, progress=progress_bar)
        ratio = f" ({result['total_ms'] / result['reference_ms']:.2f}x the reference)" if reference else ""
        print(f"{path.name}: {result['total_ms']:.3f} ms per invoke{ratio}, {args.threads} thread(s), "
              f"median of {args.blocks} blocks")
        print(format_profile(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
