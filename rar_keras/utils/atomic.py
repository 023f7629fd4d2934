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

    Missing folders on the way to `path` are created; if anything fails before the rename, the
    temporary file and the folders this call created (those still empty) are removed again, so a
    failed write leaves the disk as it was.

    Args:
        path: the file to (re)write.
        write: writes the whole content to the path it is given.
    """
    path = pathlib.Path(path)
    created, tmp = [], None
    try:
        _make_folders(path.parent, created)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes))
        os.close(fd)
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as written:      # on disk before the rename makes it the file
            os.fsync(written.fileno())
        os.replace(tmp, path)
        tmp = None
    except BaseException:
        _remove_quietly(tmp)
        for folder in reversed(created):      # the deepest first; one no longer empty stays
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
        raise


def _make_folders(folder: pathlib.Path, created: list) -> None:
    """Creates `folder` and its missing parents, top down, appending to `created` each one this call
    made (as it is made, so that a later failure still knows them)."""
    for level in reversed([folder, *folder.parents]):
        if level.is_dir():
            continue
        try:
            os.mkdir(level)
        except FileExistsError:               # made meanwhile by someone else: not ours to remove
            continue
        created.append(level)


def _remove_quietly(path) -> None:
    """Removes the file at `path` if there is one (None: nothing to remove)."""
    if path is None:
        return
    try:
        os.remove(path)
    except OSError:
        pass


def write_bytes_atomically(path, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    write_atomically(path, lambda tmp: pathlib.Path(tmp).write_bytes(data))
