"""Atomic file writes: a temporary file beside the target, renamed over it, so a crash never
leaves half a file."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Callable

FILE_MODE = 0o644  # mkstemp creates 0600; outputs are ordinary shared files


def write_atomically(path, write: Callable[[str], None]) -> None:
    """Calls `write(temporary_path)`, then renames the result over `path`.

    The temporary file ends like `path` (every suffix: ".weights.h5", which Keras's `save_weights`
    checks, ".npz", ".keras"), so writers that look at the name accept it.

    Args:
        path: the file to (re)write.
        write: writes the whole content to the path it is given.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as written:      # on disk before the rename makes it the file
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomically(path, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    write_atomically(path, lambda tmp: pathlib.Path(tmp).write_bytes(data))
