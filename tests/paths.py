"""Where the tests find the repository and its committed fixtures."""

import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"
