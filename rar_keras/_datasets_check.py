"""Fails clearly when another package named `datasets` (Hugging Face's) shadows ours."""

import datasets

if not getattr(datasets, "IS_RAR_KERAS_DATASETS", False):
    raise ImportError(
        f"the module 'datasets' imported from {getattr(datasets, '__file__', '?')} is not rar-keras's "
        "dataset package (Hugging Face 'datasets' is probably installed in this environment). "
        "Install rar-keras in its own virtual environment, or `pip uninstall datasets` there.")
