"""Measures the training input pipeline: faces cached, caching time, augmented crops per second.

Usage:
    python -m tools.benchmark_pipeline --data $RAR_KERAS_DATA/300w --size 128 --batch-size 32 --batches 100
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from datasets.errors import DataError
from datasets.schemes import W300
from datasets.w300 import load_folder

# The 300-W training folders (the HELEN test set is kept out).
TRAIN_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset")
WARMUP_BATCHES = 5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the 300-W folder holding afw/, helen/, lfpw/")
    parser.add_argument("--size", type=int, default=128, help="model crop side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=100, help="batches timed after the warm-up")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_train_faces(root: pathlib.Path):
    """The 300-W training faces under `root` (afw, helen/trainset, lfpw/trainset)."""
    records = []
    for folder in TRAIN_FOLDERS:
        records.extend(load_folder(root / folder))
    return records


def main(argv=None) -> int:
    args = parse_args(argv)
    # TensorFlow loads only once the arguments are parsed.
    from datasets.pipeline import cache_faces, train_dataset

    try:
        started = time.perf_counter()
        records = load_train_faces(pathlib.Path(args.data))
        loaded = time.perf_counter()
        cache = cache_faces(records, args.size, progress=True)
        cached = time.perf_counter()
        del records
        dataset = train_dataset(cache, W300, args.size, args.batch_size, seed=args.seed)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"faces cached: {len(cache)} ({cache.images.nbytes / 2**20:.0f} MB at {cache.context_size} px); "
          f"reading {loaded - started:.1f} s, caching {cached - loaded:.1f} s")
    iterator = iter(dataset)
    for _ in range(WARMUP_BATCHES):
        next(iterator)
    begin = time.perf_counter()
    for _ in range(args.batches):
        images, _targets = next(iterator)
    seconds = time.perf_counter() - begin
    crops = args.batches * args.batch_size
    print(f"augmented crops/s: {crops / seconds:.0f} ({crops} crops of {args.size} px in {seconds:.2f} s, "
          f"batch {args.batch_size}, after {WARMUP_BATCHES} warm-up batches)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
