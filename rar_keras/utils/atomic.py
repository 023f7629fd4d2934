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

    Missing folders on the way to `path` are created; if `write` fails, the ones this call created
    are removed again (those still empty), so a failed write leaves the disk as it was.

    Args:
        path: the file to (re)write.
        write: writes the whole content to the path it is given.
    """
    path = pathlib.Path(path)
    created = _missing_folders(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as written:      # on disk before the rename makes it the file
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        for folder in created:                # the deepest first; one that is no longer empty stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _missing_folders(folder: pathlib.Path) -> list:
    """The folders from `folder` upwards that do not exist yet, the deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def write_bytes_atomically(path, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    write_atomically(path, lambda tmp: pathlib.Path(tmp).write_bytes(data))
