"""Running the project's command lines from tests, in a fresh interpreter."""

import os
import subprocess
import sys

from tests.paths import REPO


def run_module(module: str, *args, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repository root; output captured as text."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}   # CPU: exact comparisons
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
