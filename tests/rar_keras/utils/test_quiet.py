"""`cpp_notes_held_back`: what C++ code writes to file descriptor 2 stays off the terminal unless the
block fails or the command runs verbose."""

import os

import pytest

from rar_keras.utils import quiet


def test_a_note_written_to_the_descriptor_is_held_back(capfd):
    with quiet.cpp_notes_held_back():
        os.write(2, b"INFO: a delegate note\n")
    os.write(2, b"after the block\n")
    assert capfd.readouterr().err == "after the block\n"


def test_a_failing_block_passes_its_notes_on_before_the_exception(capfd):
    with pytest.raises(RuntimeError, match="conversion failed"):
        with quiet.cpp_notes_held_back():
            os.write(2, b"error: the op is not supported\n")
            raise RuntimeError("conversion failed")
    assert capfd.readouterr().err == "error: the op is not supported\n"


def test_a_verbose_command_shows_the_notes(capfd, monkeypatch):
    monkeypatch.setitem(quiet._VERBOSE, "on", True)
    with quiet.cpp_notes_held_back():
        os.write(2, b"INFO: a delegate note\n")
    assert capfd.readouterr().err == "INFO: a delegate note\n"
