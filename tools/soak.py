"""`python -m tools.soak`: predict on many faces in one process and watch its resident memory.

Cycles through the faces of --data (any dataset `datasets.loaders` reads, e.g. a
300-W folder) until --faces faces have gone through `FaceLandmarker` (the same
path as `python -m rar_keras.predict`: crop, model, back to image pixels), with
the dataset's boxes (--boxes dataset, default) or the face detector (--boxes
detector). Prints the resident set size (RSS) after loading, after the first
batch (warm-up: graph tracing, allocator pools), every --report-every faces and
at the end, and the peak (VmHWM). A leak shows as RSS growing after warm-up.

Example:
    python -m tools.soak --model runs/w300_mobile/model.keras \
        --data $RAR_KERAS_DATA/300w/helen/testset --faces 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from datasets.errors import DataError  # noqa: E402
from datasets.loaders import load_records
from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions

EXIT_USER_ERROR = 2
MB = 2 ** 20


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="preset name or .keras file")
    parser.add_argument("--data", nargs="+", required=True, help="datasets whose faces are cycled through")
    parser.add_argument("--faces", type=int, default=1000, help="faces to predict in all (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per FaceLandmarker call")
    parser.add_argument("--boxes", choices=("dataset", "detector"), default="dataset",
                        help="face boxes: the dataset's (default) or the face detector's")
    parser.add_argument("--report-every", type=int, default=250, help="print memory every N faces")
    return parser.parse_args(argv)


def memory_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB (Linux /proc; getrusage's peak elsewhere)."""
    fields = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024 / MB
    except OSError:
        pass
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB)
    return fields.get("VmRSS", float("nan")), peak


def report(label: str, faces: int) -> float:
    rss, peak = memory_mb()
    print(f"{label:<12} faces {faces:>6}  RSS {rss:8.1f} MB  peak {peak:8.1f} MB", flush=True)
    return rss


def soak(args: argparse.Namespace) -> dict:
    if args.faces < 1 or args.batch_size < 1 or args.report_every < 1:
        raise DataError("--faces, --batch-size and --report-every must be positive integers")

    records = []
    for path in args.data:
        records.extend(load_records(path))
    if not records:
        raise DataError(f"--data {args.data}: no faces found")
    landmarker = FaceLandmarker.create(LandmarkerOptions(model=args.model, batch_size=args.batch_size))
    print(f"{len(records)} faces from {', '.join(args.data)}; model {args.model}; "
          f"{args.faces} faces to predict, batch {args.batch_size}, boxes: {args.boxes}")
    start_rss = report("loaded", 0)
    done, found, warm_rss, next_report = 0, 0, None, args.report_every
    started = time.perf_counter()
    while done < args.faces:
        chunk = [records[(done + i) % len(records)] for i in range(min(args.batch_size, args.faces - done))]
        boxes = [record.box for record in chunk] if args.boxes == "dataset" else None
        for result in landmarker.detect_batch([record.image for record in chunk], boxes):
            found += len(result.faces)
        done += len(chunk)
        if warm_rss is None:
            warm_rss = report("warmed up", done)
        if done >= next_report or done == args.faces:
            report("running", done)
            next_report += args.report_every
    seconds = time.perf_counter() - started
    end_rss, peak = memory_mb()
    print(f"done: {done} images, {found} faces predicted in {seconds:.1f} s ({done / seconds:.1f} images/s)")
    print(f"RSS start {start_rss:.1f} MB, after warm-up {warm_rss:.1f} MB, end {end_rss:.1f} MB "
          f"(growth after warm-up {end_rss - warm_rss:+.1f} MB), peak {peak:.1f} MB")
    return {"faces": done, "found": found, "seconds": seconds, "rss_start_mb": start_rss,
            "rss_warm_mb": warm_rss, "rss_end_mb": end_rss, "rss_peak_mb": peak}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        soak(args)
    except (DataError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
