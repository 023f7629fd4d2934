"""`python -m eval.w300`: 300-W (68 points). FR/AUC on the inter-pupil NME, as in the RAR paper.

Example:
    python -m eval.w300 --data $RAR_KERAS_DATA/300w/helen/testset --model mean-shape --out runs/w300
"""

from datasets.schemes import W300
from eval.runner import Benchmark, main

BENCHMARK = Benchmark(name="300-W", scheme=W300, fr_normalizer="ip", module="eval.w300")

if __name__ == "__main__":
    raise SystemExit(main(BENCHMARK))
