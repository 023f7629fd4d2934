"""RARLandmarker: conv8 detector, visibility, robust shape-model start, attentive refinement; trained with `fit`."""

from __future__ import annotations

import types
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from datasets.schemes import get_scheme
from rar_keras.backbones.factory import build_backbone
from rar_keras.layers import (AttentiveRefiner, HeatmapDecoder, HeatmapShapeFit, OccluderMaskHead, RobustShapeInit,
                              ShapePosterior, VisibilityHead)
from rar_keras.layers.coordinates import shape_scale
from rar_keras.models import graph_metrics, losses, teacher_view
from rar_keras.models.config import SHAPE_FIT_MODE, STAGES, RARConfig, TrainingConfig
from rar_keras.models.gaussian_shape_model import build_gaussian_shape_model
from rar_keras.models.shape_bank import build_shape_bank
from rar_keras.models.shape_prior import build_shape_prior
from rar_keras.presets import load_preset
from rar_keras.training import distribute

LOSS_NAMES = ("loss", "heatmap_loss", "decode_loss", "ambiguity_loss", "visibility_loss", "refine_loss", "policy_loss",
              "value_loss", "distill_loss")
NME_NAMES = ("nme", "nme_detected", "nme_init")


@keras.saving.register_keras_serializable(package="rar_keras")
class RARLandmarker(keras.Model):
    """The whole RAR pipeline on a face crop: raw RGB pixels (B, S, S, 3) in 0..255 in, landmarks out.

    1. The backbone's conv8 heatmaps give the detected shape S_d (`HeatmapDecoder`).
    2. `VisibilityHead` scores each detected point: on the face, or hidden by an occluder.
    3. `RobustShapeInit` fits the shape model to S_d, weighted by visibility and by the fit's own
       robust weights: the start S_0 (or, with `init_mode` "shape_fit", `HeatmapShapeFit` fits a
       Gaussian shape model to the heatmaps themselves, weighted by visibility).
    4. `AttentiveRefiner` moves S_0 in T steps (A-LSTM attention, R-LSTM context, per-landmark
       updates from features finer than the heatmap).
    5. With the config's `shape_prior`, `ShapePosterior` pulls S_T towards a Gaussian prior of
       training shapes, each point as far as its visibility trusts it: the output "landmarks".

    With the config's `occluder_mask`, an `OccluderMaskHead` reads the features of a first pass of
    steps 1-2, the region it finds covered by occluders is painted grey, and steps 1-4 run on the
    painted crop. "detected" is the first pass's S_d (the detector on the crop as given); every
    other output comes from the painted crop. The head is frozen in `fit`
    (`rar_keras.training.occluder_mask` trains it), and a model with a head trains in the "refiner"
    stage only: `fit` then trains the refiner and the visibility head on the painted crop, as
    inference runs them, and `evaluate` scores that pass.

    Outputs a dict: "landmarks" (B, L, 2) final shape in crop pixels (S_T, or its posterior with a
    shape prior); "steps" (B, T+1, L, 2) from S_0 to S_T; "detected" (B, L, 2) S_d; "confidence"
    (B, L) the heatmaps' peak probabilities; "visibility" (B, L) probability that each landmark is
    visible; "attention" (B, T) attention centres; "attention_logits" (B, T, L); "heatmaps"
    (B, h, w, L) conv8 logits; with an occluder mask head, "occluder_mask" (B, h, w) the
    probability that an occluder covers each heatmap cell. "landmarks", "steps" and "detected"
    include the config's `landmark_offset`.

    How it trains (loss weights, stages, start shapes, attention sampling) comes from the
    `TrainingConfig` given to `compile`; `set_teacher` adds a trained model whose heatmaps the
    detector also learns to match (distillation).

    Args:
        config: a `RARConfig` (or its dict form, as stored by `get_config`).
        init_mode: how S_0 is chosen, one of `config.START_MODES` (see `RobustShapeInit`; "shape_fit":
            `HeatmapShapeFit`, whose layer the model then holds); default: the config's.

    Example:
        >>> experiment = EXPERIMENTS["w300_mobile"]
        >>> model = RARLandmarker(experiment.model)
        >>> model.compile(optimizer="adamw", training=experiment.training)
        >>> model.build_for_training(); model.fit_shape_bank(train_crop_landmarks)
        >>> model.fit(train_dataset(...))
        >>> model = RARLandmarker.from_preset("w300_mobile")
    """

    def __init__(self, config: RARConfig | dict, init_mode: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config if isinstance(config, RARConfig) else RARConfig.from_dict(config)
        self.init_mode = init_mode or self.config.init_mode
        self.scheme = get_scheme(self.config.scheme)
        self.stage = "joint"
        self.training_config = TrainingConfig()
        cfg, num = self.config, self.scheme.num_points
        self.backbone = build_backbone(cfg)
        self.decoder = HeatmapDecoder(stride=cfg.heatmap_stride, subpixel=cfg.subpixel, mode=cfg.decode,
                                      temperature=cfg.decode_temperature)
        self.visibility_head = VisibilityHead(num, stride=cfg.heatmap_stride, heatmap_patch=cfg.heatmap_patch,
                                              hidden_units=cfg.hidden_units)
        self.initializer = RobustShapeInit(num, cfg.bank_size, cfg.shape_components, iterations=cfg.fit_iterations,
                                           robust_scale=cfg.robust_scale)
        # Only a model that starts from the heatmap shape fit holds its shape model: a model with
        # another start has no shape-fit weights.
        self.shape_fit = (HeatmapShapeFit(num, cfg.shape_fit_components, stride=cfg.heatmap_stride,
                                          radii=cfg.shape_fit_radii, em_steps=cfg.shape_fit_em_steps,
                                          ridge=cfg.shape_fit_ridge)
                          if SHAPE_FIT_MODE in (self.init_mode, cfg.init_mode) else None)
        # Only a model whose config asks for it holds the occluder mask head; a model without it has
        # no head weights. The head is frozen here: `rar_keras.training.occluder_mask` trains it alone.
        self.occluder_mask = None
        if cfg.occluder_mask:
            self.occluder_mask = OccluderMaskHead(cfg.occluder_mask_channels, stride=cfg.heatmap_stride,
                                                  fine_stride=self.backbone.fine_stride, fill=cfg.occluder_mask_fill,
                                                  threshold=cfg.occluder_mask_threshold,
                                                  dilations=cfg.occluder_mask_dilations)
            self.occluder_mask.trainable = False
        # Only a model whose config asks for it holds the output's shape prior.
        self.shape_posterior = (ShapePosterior(num, visible_noise=cfg.shape_prior_visible_noise,
                                               hidden_noise=cfg.shape_prior_hidden_noise, steps=cfg.shape_prior_steps)
                                if cfg.shape_prior else None)
        self.refiner = AttentiveRefiner(num, steps=cfg.steps, lstm_units=cfg.lstm_units,
                                        channels=cfg.refine_channels, context_channels=cfg.context_channels,
                                        hidden_units=cfg.hidden_units, stride=cfg.heatmap_stride,
                                        fine_stride=self.backbone.fine_stride, fine_patch=cfg.fine_patch,
                                        heatmap_patch=cfg.heatmap_patch, alpha=cfg.alpha, kappa=cfg.kappa,
                                        attention_radius=cfg.attention_radius)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES + NME_NAMES}
        self._start_seed = keras.random.SeedGenerator(1)
        self.set_teacher(None)

    # === Construction ===
    def set_shape_bank(self, bank) -> None:
        """Stores a `ShapeBank` (see `rar_keras.models.shape_bank`) in the model's weights."""
        self.initializer.set_bank(bank)

    def fit_shape_bank(self, crop_landmarks: np.ndarray, seed: int = 0):
        """Builds the shape bank and basis from training landmarks in crop pixels, and the heatmap shape
        fit's shape model when the model has one (`fit_shape_model`); stores them; returns the bank."""
        bank = build_shape_bank(crop_landmarks, self.config.bank_size, self.config.shape_components, seed=seed)
        self.set_shape_bank(bank)
        self.fit_shape_model(crop_landmarks)
        return bank

    def fit_shape_model(self, landmarks: np.ndarray) -> None:
        """Builds the shape models the model holds from training landmarks (N, L, 2) in any pixels
        (similarity-free models) and stores them: the heatmap shape fit's Gaussian shape model (more
        than `shape_fit_components` shapes needed) and the output's shape prior (at least 2L shapes);
        a ValueError with too few. Nothing when the model holds neither."""
        if self.shape_fit is not None:
            shape_model = build_gaussian_shape_model(landmarks, self.config.shape_fit_components)
            self.shape_fit.set_shape_model(shape_model.mean, shape_model.basis, shape_model.variances)
        if self.shape_posterior is not None:
            prior = build_shape_prior(landmarks)
            self.shape_posterior.set_prior(prior.mean, prior.eigenvectors, prior.eigenvalues)

    def compile(self, optimizer="adamw", training: TrainingConfig | None = None, **kwargs):
        """Keras `compile`, plus the `TrainingConfig` whose losses and stages `fit` uses."""
        self.training_config = training or TrainingConfig()
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": keras.optimizers.serialize(self.optimizer), "training": self.training_config.to_dict()}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]),
                     training=TrainingConfig.from_dict(config["training"]))
        if self.built:   # the optimizer's slots, so that a saved optimizer state loads into them
            self.optimizer.build(self.trainable_variables)

    def set_teacher(self, teacher: "RARLandmarker | Sequence[RARLandmarker] | None") -> None:
        """Trained models of the same scheme whose conv8 heatmaps the detector learns to match in
        `fit` (and `evaluate` reports), weighted by the training config's `distill_weight`. Each
        teacher sees the same crops (or the finer ones the pipeline gives as the target "rendered",
        `distill_native`), resampled to its input size and crop margin (`teacher_view`; its
        heatmaps at most twice this model's side: they are resampled back without anti-aliasing);
        with several, the target is the mean of their logits on this model's grid (an ensemble).
        Their weights are neither trained nor saved with this model. One model, a sequence of
        models, or None (no teacher)."""
        teachers = () if teacher is None else tuple(teacher) if isinstance(teacher, (list, tuple)) else (teacher,)
        for one in teachers:
            if one.config.scheme != self.config.scheme:
                raise ValueError(f"the teacher must share the landmark scheme: teacher {one.config.scheme}, "
                                 f"this model {self.config.scheme}")
            if one.config.heatmap_size > 2 * self.config.heatmap_size:
                raise ValueError(f"the teacher's heatmaps ({one.config.heatmap_size} cells) may be at most "
                                 f"twice this model's ({self.config.heatmap_size})")
            one.trainable = False
        # Kept in a plain namespace, reachable by no attribute or property of the model: Keras neither
        # tracks nor saves what it holds (the saver follows layers, lists, tuples and dicts among the
        # model's attributes and properties, not other objects).
        object.__setattr__(self, "_distillation", types.SimpleNamespace(teachers=teachers))
        self.train_function = self.test_function = None  # retrace with or without the teacher

    def teacher_configs(self) -> list:
        """The `RARConfig` of each teacher set by `set_teacher`."""
        return [teacher.config for teacher in self._distillation.teachers]

    def set_stage(self, stage: str) -> None:
        """Selects what `fit` trains: "detector", "refiner" (backbone frozen) or "joint"."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.stage = stage
        self.train_function = self.test_function = None  # retrace both steps for the new stage

    # === Forward ===
    def _detect(self, images, training=None):
        """Backbone, S_d and visibility: the dict of what the start and the refiner need."""
        encoded = self.backbone(tf.cast(images, tf.float32), training=bool(training) and self.stage != "refiner")
        if self.stage == "refiner":
            encoded = {key: tf.stop_gradient(value) for key, value in encoded.items()}
        detected, confidence, probabilities = self.decoder(encoded["heatmaps"])
        visibility_logits = self.visibility_head(encoded["features"], tf.stop_gradient(probabilities),
                                                 tf.stop_gradient(detected))
        return {**encoded, "detected": detected, "confidence": confidence, "probabilities": probabilities,
                "visibility_logits": visibility_logits, "visibility": tf.sigmoid(visibility_logits)}

    def _refine(self, detected, start, training=None):
        return self.refiner(detected["features"], detected["fine_features"],
                            tf.stop_gradient(detected["probabilities"]), start,
                            tf.stop_gradient(detected["visibility"]), training=training,
                            sample_attention=bool(training) and self.training_config.sample_attention)

    def _start(self, detected, mode):
        """The start shape S_0 (B, L, 2) of the refinement, by start mode."""
        if mode == SHAPE_FIT_MODE:
            if self.shape_fit is None:
                raise ValueError(f"init mode {SHAPE_FIT_MODE!r} needs a model whose config starts that way "
                                 f"(it holds the shape model); this one has init_mode {self.init_mode!r}")
            return self.shape_fit(tf.stop_gradient(detected["probabilities"]), tf.stop_gradient(detected["detected"]),
                                  tf.stop_gradient(detected["visibility"]))
        start, _ = self.initializer(tf.stop_gradient(detected["detected"]), tf.stop_gradient(detected["visibility"]),
                                    mode=mode)
        return start

    def _passes(self, images, training=None):
        """(first pass, the pass the start and the refiner read, mask logits): without an occluder mask
        head both passes are the one `_detect` on `images` and the logits are None; with one, the
        second pass runs on `images` painted grey where the head finds an occluder."""
        first = self._detect(images, training)
        if self.occluder_mask is None:
            return first, first, None
        mask_logits = self.occluder_mask(first["features"], first["fine_features"])
        painted = self.occluder_mask.paint(tf.cast(images, tf.float32), mask_logits)
        return first, self._detect(painted, training), mask_logits

    def _final(self, refined, detected):
        """The output shape (B, L, 2) before the landmark offset: S_T, or its shape posterior."""
        last = refined["shapes"][:, -1]
        if self.shape_posterior is None:
            return last
        return self.shape_posterior(last, detected["visibility"])

    def call(self, images, training=None, init_mode=None):
        first, detected, mask_logits = self._passes(images, training)
        start = self._start(detected, init_mode or self.init_mode)
        refined = self._refine(detected, start, training)
        steps, points = self._annotated(refined["shapes"]), self._annotated(first["detected"])
        outputs = {"landmarks": self._annotated(self._final(refined, detected)), "steps": steps, "detected": points,
                   "confidence": detected["confidence"], "visibility": detected["visibility"],
                   "attention": refined["centres"], "attention_logits": refined["logits"],
                   "heatmaps": detected["heatmaps"]}
        if mask_logits is not None:
            outputs["occluder_mask"] = tf.sigmoid(mask_logits[..., 0])
        return outputs

    def occluder_mask_logits(self, images):
        """(B, h, w, 1) logits of the occluder mask head on `images` (no gradient into the rest of the
        model): what `tools.fit_occluder_mask` trains."""
        if self.occluder_mask is None:
            raise ValueError("this model has no occluder mask head (its config's occluder_mask is false)")
        encoded = self.backbone(tf.cast(images, tf.float32), training=False)
        return self.occluder_mask(tf.stop_gradient(encoded["features"]), tf.stop_gradient(encoded["fine_features"]))

    def _annotated(self, shapes):
        """`shapes` (..., L, 2) in crop pixels moved by the config's `landmark_offset` into the training
        annotations' convention (what the outputs give; the losses compare the raw shapes, which the
        flipped training crops keep free of that offset)."""
        offset = self.config.landmark_offset_pixels
        if offset == (0.0, 0.0):
            return shapes
        return shapes + tf.constant(offset, tf.float32)

    # === Training ===
    def _training_starts(self, robust_start, landmarks):
        """Per face, one of: the robust start, the truth plus noise, or the mean shape (a distribution
        of starts, so that the refiner learns to correct rather than to re-decode)."""
        cfg = self.training_config
        batch = tf.shape(landmarks)[0]
        draw = keras.random.uniform([batch, 4], seed=self._start_seed)
        _, radius = shape_scale(landmarks)
        low, high = cfg.start_noise
        noise_scale = (low + (high - low) * draw[:, 1])[:, None, None] * radius
        noise = keras.random.normal(tf.shape(landmarks), seed=self._start_seed) * noise_scale
        shift = (draw[:, None, 2:4] - 0.5) * 2.0 * noise_scale                       # a common offset too
        noisy_truth = landmarks + noise + shift
        mean = tf.broadcast_to(self.initializer.mean_shape[None], tf.shape(landmarks))
        choice = draw[:, 0][:, None, None]
        return tf.where(choice < cfg.start_truth_prob, noisy_truth,
                        tf.where(choice < cfg.start_truth_prob + cfg.start_mean_prob, mean, robust_start))

    def _distillation_targets(self, images, rendered=None):
        """The mean of the teachers' conv8 logits on the same crops, each resized to this model's grid
        (no gradient), when a teacher is set and the detector trains; else None. The teachers see
        `rendered`, the same crops at a finer pixel scale, when given; else `images`."""
        teachers = self._distillation.teachers
        if not teachers or self.stage == "refiner":
            return None
        pixels, source = ((images, self.config) if rendered is None
                          else (rendered, teacher_view.CropFrame(int(rendered.shape[1]), self.config.margin)))
        resized = [teacher_view.on_student_grid(self._teacher_logits(teacher, pixels, source), self.config,
                                                teacher.config)
                   for teacher in teachers]
        return tf.add_n(resized) / float(len(resized))

    def _teacher_logits(self, teacher, images, source):
        """One teacher's conv8 logits on the crops `images` of frame `source` (a config with
        `input_size` and `margin`) as it sees them (`teacher_view`; no gradient). With
        `distill_flip`, the mean of those logits and the ones of the mirrored crops, mirrored back with
        left and right swapped (heatmap cell centres are symmetric about the crop's centre, so
        reversing the grid mirrors exactly)."""
        pixels = teacher_view.teacher_view(images, source, teacher.config)
        if not self.training_config.distill_flip:
            return tf.stop_gradient(teacher.backbone(pixels, training=False)["heatmaps"])
        both = teacher.backbone(tf.concat([pixels, tf.reverse(pixels, [2])], 0), training=False)["heatmaps"]
        plain, mirrored = tf.split(both, 2, axis=0)
        mirrored = tf.gather(tf.reverse(mirrored, [2]), self.scheme.flip_permutation, axis=-1)
        return tf.stop_gradient((plain + mirrored) / 2.0)

    def _objective(self, detected, refined, landmarks, visibility, teacher_heatmaps=None):
        cfg = self.training_config
        heat = losses.heatmap_loss(detected["heatmaps"], landmarks, self.config.heatmap_stride, cfg.heatmap_sigma)
        seen = losses.visibility_loss(detected["visibility_logits"], visibility)
        values = {"heatmap_loss": heat, "visibility_loss": seen}
        total = cfg.visibility_weight * seen + (0.0 if self.stage == "refiner" else cfg.heatmap_weight) * heat
        if cfg.decode_weight and self.stage != "refiner":
            decode = losses.decode_loss(detected["detected"], landmarks)
            values["decode_loss"] = decode
            total += cfg.decode_weight * decode
        if cfg.ambiguity_weight and self.stage != "refiner":
            ambiguity = losses.ambiguity_loss(detected["heatmaps"], landmarks, self.config.heatmap_stride,
                                              cfg.ambiguity_omega)
            values["ambiguity_loss"] = ambiguity
            total += cfg.ambiguity_weight * ambiguity
        if teacher_heatmaps is not None:      # never in the refiner stage (see _distillation_targets)
            distill = losses.distillation_loss(detected["heatmaps"], teacher_heatmaps)
            values["distill_loss"] = distill
            total += cfg.distill_weight * distill
        if refined is not None:
            refine = losses.refinement_loss(refined["shapes"], landmarks, cfg.refine_criterion)
            policy, value = losses.attention_losses(refined, landmarks, cfg.eta, cfg.entropy_weight)
            values.update(refine_loss=refine, policy_loss=policy, value_loss=value)
            total += cfg.refine_weight * refine + cfg.attention_weight * (policy + cfg.value_weight * value)
        return {"loss": total, **values}

    def _trainable_for_stage(self):
        if self.stage == "detector":
            return self.backbone.trainable_variables + self.visibility_head.trainable_variables
        if self.stage == "refiner":
            return self.refiner.trainable_variables + self.visibility_head.trainable_variables
        return self.trainable_variables

    def _check_stage_for_mask(self):
        """A model with an occluder mask head trains in the "refiner" stage only: the head reads the
        backbone's features, which the other stages would change under it."""
        if self.occluder_mask is not None and self.stage != "refiner":
            raise ValueError(f"a model with an occluder mask head trains in the 'refiner' stage only (the head "
                             f"reads the backbone's features, which stage {self.stage!r} would change); train "
                             f"the single-pass model, then the head with python -m tools.fit_occluder_mask")

    def _forward_for_training(self, images, landmarks):
        """(first pass, the pass the losses read, refined or None, start): with an occluder mask head
        the refiner learns on the painted crop, the pass inference runs."""
        first, detected, _ = self._passes(images, training=True)
        start = self._start(detected, self.init_mode)
        if self.stage == "detector":
            return first, detected, None, start
        start = self._training_starts(start, landmarks)
        return first, detected, self._refine(detected, start, training=True), start

    def _update_metrics(self, loss_values, landmarks, final, detected, start):
        for name, value in loss_values.items():
            self._trackers[name].update_state(tf.reduce_mean(value))
        for name, shape in (("nme", final), ("nme_detected", detected), ("nme_init", start)):
            self._trackers[name].update_state(graph_metrics.nme_ip(shape, landmarks, self.scheme))
        return {name: tracker.result() for name, tracker in self._active_trackers().items()}

    def _active_trackers(self) -> dict:
        """The trackers `fit` logs: the optional losses only when their weight is on, so that the
        columns of `log.csv` do not depend on options that are off."""
        optional = {"decode_loss": self.training_config.decode_weight,
                    "ambiguity_loss": self.training_config.ambiguity_weight}
        return {name: tracker for name, tracker in self._trackers.items() if optional.get(name, 1.0)}

    def train_step(self, data):
        images, landmarks, visibility, rendered = _unpack(data)
        self._check_stage_for_mask()
        variables = self._trainable_for_stage()
        teacher_heatmaps = self._distillation_targets(images, rendered)
        with tf.GradientTape() as tape:
            first, detected, refined, start = self._forward_for_training(images, landmarks)
            loss_values = self._objective(detected, refined, landmarks, visibility, teacher_heatmaps)
            # Gradients are summed over replicas: scale each replica's mean by their count.
            replicas = tf.distribute.get_replica_context().num_replicas_in_sync
            scaled = tf.reduce_mean(loss_values["loss"]) / tf.cast(replicas, tf.float32)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        final = detected["detected"] if refined is None else self._final(refined, detected)
        logs = self._update_metrics(loss_values, landmarks, final, first["detected"], start)
        return distribute.logs_for_reduction(logs)

    def test_step(self, data):
        images, landmarks, visibility, rendered = _unpack(data)
        first, detected, _ = self._passes(images, training=False)
        start = self._start(detected, self.init_mode)
        refined = self._refine(detected, start, training=False)
        loss_values = self._objective(detected, refined, landmarks, visibility,
                                      self._distillation_targets(images, rendered))
        logs = self._update_metrics(loss_values, landmarks, self._final(refined, detected), first["detected"], start)
        return distribute.logs_for_reduction(logs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20585: see the workaround block in rar_keras.training.distribute.
        if distribute.needs_symbolic_build(self):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self):
        return list(self._active_trackers().values())

    def build_for_inference(self) -> None:
        """Creates every weight (a forward pass on one blank crop)."""
        self(tf.zeros([1, self.config.input_size, self.config.input_size, 3]), training=False)

    def build_for_training(self) -> None:
        """Builds the model and its optimizer's slots for every variable (before `fit`, or distributed)."""
        self.build_for_inference()
        self.optimizer.build(self.trainable_variables)

    @classmethod
    def from_preset(cls, name: str) -> "RARLandmarker":
        """Loads a shipped preset (see `rar_keras.presets.list_presets`) or a preset folder, offline."""
        return load_preset(name, cls)

    # === Serialisation ===
    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(), "init_mode": self.init_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _unpack(data):
    """(images, landmarks, visibility, rendered): targets are landmarks, or a dict with "landmarks"
    and, where known, "visibility" (1 visible, 0 occluded; all visible otherwise) and "rendered"
    (the same crops at a finer pixel scale, for the teachers; else None)."""
    images, targets = data[0], data[1]
    landmarks = tf.cast(targets["landmarks"] if isinstance(targets, dict) else targets, tf.float32)
    if isinstance(targets, dict) and "visibility" in targets:
        visibility = tf.cast(targets["visibility"], tf.float32)
    else:
        visibility = tf.ones(tf.shape(landmarks)[:2])
    rendered = targets.get("rendered") if isinstance(targets, dict) else None
    return images, landmarks, visibility, rendered
