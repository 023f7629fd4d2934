"""Quiet command lines: TensorFlow's start-up lines (absl, oneDNN, CUDA probing on machines without a
GPU) are written by its C++ code straight to file descriptor 2, before any Python logging setting
applies. `import_tensorflow` silences that descriptor for the import and the device discovery
that follows it; real errors still raise as Python exceptions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings

from ai_edge_litert.interpreter import Interpreter

# Keras's notes that concern neither the user nor the result (the data is a shuffled tf.data stream).
KERAS_NOISE = (r".*`shuffle=True` was passed.*",)


@contextlib.contextmanager
def silenced_stderr():
    """Sends file descriptor 2 (C++ logs included) to /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


# Set by `import_tensorflow(verbose=True)`: a command run with --verbose shows the C++ notes too.
_VERBOSE = {"on": False}


@contextlib.contextmanager
def cpp_notes_held_back():
    """Keeps what C++ code writes to file descriptor 2 inside the block (LiteRT's and the converter's
    notes) off the terminal, unless the command runs verbose; if the block raises, what was written
    is passed on to stderr before the exception, so a C++ diagnostic still reaches the user."""
    if _VERBOSE["on"]:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))


def import_tensorflow(verbose: bool = False):
    """Imports TensorFlow (and returns it), quietly unless `verbose`."""
    _VERBOSE["on"] = _VERBOSE["on"] or verbose
    if verbose or "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for pattern in KERAS_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    with silenced_stderr():
        import tensorflow

        # Device discovery (and its CUDA probe, which logs an error on machines without a GPU) runs
        # on first use; running it here keeps it inside the silenced block.
        tensorflow.config.list_physical_devices()
    return tensorflow


def litert_interpreter(model_path: str, num_threads=None):
    """A LiteRT interpreter with its tensors allocated, without LiteRT's note on stderr about the
    XNNPACK delegate it creates (printed by its C++ code at allocation)."""
    interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
    with silenced_stderr():
        interpreter.allocate_tensors()
    return interpreter
