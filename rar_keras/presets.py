"""Shipped pretrained models: `rar_keras/presets/<name>/model.keras`, loadable offline."""

from __future__ import annotations

import pathlib

PRESETS_DIR = pathlib.Path(__file__).resolve().parent / "presets"
MODEL_FILE = "model.keras"


def list_presets() -> list[str]:
    """Names of the presets shipped with this installation."""
    return sorted(p.parent.name for p in PRESETS_DIR.glob(f"*/{MODEL_FILE}"))


def preset_path(name: str) -> pathlib.Path:
    """The `.keras` file of a shipped preset, with a clear error naming the known ones."""
    path = PRESETS_DIR / name / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; shipped presets: {list_presets() or 'none'}")
    return path
