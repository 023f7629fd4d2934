"""Atomic writes: the file appears whole or not at all, and a failed write leaves no file or folder."""

import os

import pytest

from rar_keras.utils.atomic import FILE_MODE, write_atomically, write_bytes_atomically


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "model.weights.h5"
    target.write_bytes(b"old")
    seen = []

    def write(path):
        seen.append(path)
        with open(path, "wb") as handle:
            handle.write(b"new content")

    write_atomically(target, write)
    assert target.read_bytes() == b"new content"
    assert seen[0].endswith(".weights.h5") and os.path.dirname(seen[0]) == str(tmp_path)
    assert os.stat(target).st_mode & 0o777 == FILE_MODE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.tflite"
    target.write_bytes(b"old")

    def fail(path):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("converter failed")

    with pytest.raises(RuntimeError, match="converter failed"):
        write_atomically(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tflite"]


def test_a_failed_write_removes_the_folders_it_created(tmp_path):
    (tmp_path / "kept").mkdir()
    target = tmp_path / "kept" / "new" / "deeper" / "out.onnx"

    def fail(path):
        raise ValueError("refused")

    with pytest.raises(ValueError):
        write_atomically(target, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []
    write_bytes_atomically(target, b"ok")                     # and a write that succeeds creates them
    assert target.read_bytes() == b"ok"


def test_a_created_folder_that_something_else_filled_stays(tmp_path):
    target = tmp_path / "new" / "out.json"

    def fail(path):
        (tmp_path / "new" / "other.txt").write_text("written meanwhile")
        raise ValueError("refused")

    with pytest.raises(ValueError):
        write_atomically(target, fail)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["other.txt"]


def test_only_the_folders_this_call_made_are_removed(tmp_path):
    (tmp_path / "existing").mkdir()
    target = tmp_path / "new" / ".." / "existing" / "out.tflite"     # "new" is made on the way

    def fail(path):
        raise ValueError("refused")

    with pytest.raises(ValueError):
        write_atomically(target, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_an_interrupted_write_cleans_up_too(tmp_path):
    def interrupt(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "a" / "b" / "out.npz", interrupt)
    assert list(tmp_path.iterdir()) == []
