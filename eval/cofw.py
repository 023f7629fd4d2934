"""`python -m eval.cofw`: COFW (29 points, .mat). FR/AUC on the inter-pupil NME, as in RCPR and RAR.

Example:
    python -m eval.cofw --data COFW_test_color.mat --train-data COFW_train_color.mat --out runs/cofw
"""

from datasets.schemes import COFW29
from eval.runner import Benchmark, main

BENCHMARK = Benchmark(name="COFW", scheme=COFW29, fr_normalizer="ip", module="eval.cofw")

if __name__ == "__main__":
    raise SystemExit(main(BENCHMARK))
