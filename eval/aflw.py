"""`python -m eval.aflw`: AFLW (19 points). FR/AUC on the box NME sqrt(w*h) of each face's box.

Example:
    python -m eval.aflw --data aflw_test.json --image-root aflw/images --train-data aflw_train.json --out runs/aflw
"""

from datasets.schemes import AFLW19
from eval.runner import Benchmark, main

BENCHMARK = Benchmark(name="AFLW", scheme=AFLW19, fr_normalizer="box", module="eval.aflw",
                      normalizers=("ip", "io", "box"))

if __name__ == "__main__":
    raise SystemExit(main(BENCHMARK))
