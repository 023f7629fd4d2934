"""RARLandmarker: conv8 detector, robust shape-bank start, attentive refinement, trained with `fit`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from datasets.schemes import get_scheme
from rar_keras.backbones import build_backbone
from rar_keras.layers import AttentiveRefiner, HeatmapDecoder, RobustShapeInit
from rar_keras.models import graph_metrics, losses
from rar_keras.models.config import STAGES, RARConfig, TrainingConfig
from rar_keras.training import distribute


@keras.saving.register_keras_serializable(package="rar_keras")
class RARLandmarker(keras.Model):
    """The whole RAR pipeline on a face crop: raw RGB pixels (B, S, S, 3) in 0..255 in, landmarks out.

    Outputs a dict: "landmarks" (B, L, 2) final shape in crop pixels; "steps"
    (B, T+1, L, 2) from the start shape S_0 to S_T; "detected" (B, L, 2) the
    conv8 argmax shape S_d; "confidence" (B, L) its peak probabilities;
    "attention" (B, T) attention centres; "attention_logits" (B, T, L);
    "heatmaps" (B, h, w, L) conv8 logits; "bank_index" (B,) the chosen bank shape.

    How it trains (loss weights, stages, attention sampling) comes from the
    `TrainingConfig` given to `compile`.

    Args:
        config: a `RARConfig` (or its dict form, as stored by `get_config`).
        init_mode: how S_0 is chosen (see `RobustShapeInit`); default: the config's.

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
        self.decoder = HeatmapDecoder(stride=cfg.heatmap_stride, subpixel=cfg.subpixel)
        face_size = cfg.input_size / (1.0 + cfg.margin)
        self.initializer = RobustShapeInit(num, cfg.bank_size, cfg.ransac_pairs,
                                           inlier_threshold=cfg.inlier_threshold * face_size)
        self.refiner = AttentiveRefiner(num, steps=cfg.steps, lstm_units=cfg.lstm_units,
                                        sip_channels=cfg.sip_channels, sip_patch=cfg.sip_patch,
                                        stride=cfg.heatmap_stride, alpha=cfg.alpha, kappa=cfg.kappa,
                                        heatmap_patch=cfg.heatmap_patch,
                                        heatmap_channels=cfg.heatmap_channels)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in
                          ("loss", "heatmap_loss", "refine_loss", "attention_loss",
                           "nme", "nme_detected", "nme_init")}

    # === Construction ===
    def set_shape_bank(self, bank) -> None:
        """Stores a `ShapeBank` (see `rar_keras.models.shape_bank`) in the model's weights."""
        self.initializer.set_bank(bank.shapes, bank.mean_shape, bank.pairs)

    def fit_shape_bank(self, crop_landmarks: np.ndarray, seed: int = 0):
        """Builds the shape bank from training landmarks in crop pixels, stores it; returns it."""
        from rar_keras.models.shape_bank import build_shape_bank

        bank = build_shape_bank(crop_landmarks, self.config.bank_size, self.config.ransac_pairs, seed=seed)
        self.set_shape_bank(bank)
        return bank

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

    def set_stage(self, stage: str) -> None:
        """Selects what `fit` trains: "detector", "refiner" (backbone frozen) or "joint"."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.stage = stage
        self.train_function = None  # retrace train_step for the new stage

    # === Forward ===
    def call(self, images, training=None, init_mode=None):
        images = tf.cast(images, tf.float32)
        backbone_training = bool(training) and self.stage != "refiner"
        encoded = self.backbone(images, training=backbone_training)
        features, heatmaps = encoded["features"], encoded["heatmaps"]
        if self.stage == "refiner":
            features = tf.stop_gradient(features)
        detected, confidence, probabilities = self.decoder(heatmaps)
        start, bank_index = self.initializer(tf.stop_gradient(detected), mode=init_mode or self.init_mode)
        refined = self.refiner(features, start, heatmaps=tf.stop_gradient(probabilities), training=training,
                               sample_attention=bool(training) and self.training_config.sample_attention)
        return {"landmarks": refined["shapes"][:, -1], "steps": refined["shapes"], "detected": detected,
                "confidence": confidence, "attention": refined["centres"],
                "attention_logits": refined["logits"], "heatmaps": heatmaps, "bank_index": bank_index,
                "_refined": refined}

    # === Training ===
    def _objective(self, outputs, landmarks):
        cfg = self.training_config
        heat = losses.heatmap_loss(outputs["heatmaps"], landmarks, self.config.heatmap_stride, cfg.heatmap_sigma)
        refine, attention = losses.refinement_and_attention_losses(outputs["_refined"], landmarks, cfg.eta)
        weights = {"detector": (cfg.heatmap_weight, 0.0, 0.0),
                   "refiner": (0.0, cfg.refine_weight, cfg.attention_weight),
                   "joint": (cfg.heatmap_weight, cfg.refine_weight, cfg.attention_weight)}[self.stage]
        per_face = weights[0] * heat + weights[1] * refine + weights[2] * attention
        return {"loss": per_face, "heatmap_loss": heat, "refine_loss": refine, "attention_loss": attention}

    def _trainable_for_stage(self):
        if self.stage == "detector":
            return self.backbone.trainable_variables
        if self.stage == "refiner":
            return self.refiner.trainable_variables
        return self.trainable_variables

    def _update_metrics(self, outputs, landmarks, loss_values):
        for name, value in loss_values.items():
            self._trackers[name].update_state(tf.reduce_mean(value))
        self._trackers["nme"].update_state(graph_metrics.nme_ip(outputs["landmarks"], landmarks, self.scheme))
        self._trackers["nme_detected"].update_state(graph_metrics.nme_ip(outputs["detected"], landmarks, self.scheme))
        self._trackers["nme_init"].update_state(graph_metrics.nme_ip(outputs["steps"][:, 0], landmarks, self.scheme))
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def train_step(self, data):
        images, landmarks = _unpack(data)
        variables = self._trainable_for_stage()
        with tf.GradientTape() as tape:
            outputs = self(images, training=True)
            loss_values = self._objective(outputs, landmarks)
            # Gradients are summed over replicas: scale each replica's mean by their count.
            replicas = tf.distribute.get_replica_context().num_replicas_in_sync
            scaled = tf.reduce_mean(loss_values["loss"]) / tf.cast(replicas, tf.float32)
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        return distribute.logs_for_reduction(self._update_metrics(outputs, landmarks, loss_values))

    def test_step(self, data):
        images, landmarks = _unpack(data)
        outputs = self(images, training=False)
        logs = self._update_metrics(outputs, landmarks, self._objective(outputs, landmarks))
        return distribute.logs_for_reduction(logs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # keras-team/keras#20585: see the workaround block in rar_keras.distribute.
        if distribute.needs_symbolic_build(self):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self):
        return list(self._trackers.values())

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
        from rar_keras.presets import load_preset

        return load_preset(name, cls)

    # === Serialisation ===
    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(), "init_mode": self.init_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _unpack(data):
    images, targets = data[0], data[1]
    landmarks = targets["landmarks"] if isinstance(targets, dict) else targets
    return images, tf.cast(landmarks, tf.float32)

