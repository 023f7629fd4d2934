"""`python -m eval.wflw`: WFLW (98 points). FR/AUC on the inter-ocular (outer corners) NME, as HRNet/PIPNet.

Example:
    python -m eval.wflw --data list_98pt_rect_attr_test.txt --image-root WFLW_images \
        --train-data list_98pt_rect_attr_train.txt --out runs/wflw
"""

from datasets.schemes import WFLW98
from eval.runner import Benchmark, main

BENCHMARK = Benchmark(name="WFLW", scheme=WFLW98, fr_normalizer="io", module="eval.wflw")

if __name__ == "__main__":
    raise SystemExit(main(BENCHMARK))
