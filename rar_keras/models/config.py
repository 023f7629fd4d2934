"""Configurations: the architecture a preset needs (`RARConfig`), how a model is trained
(`TrainingConfig`, with the augmentation), and the named experiments that pair them.

No TensorFlow here: the training command checks a configuration before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from datasets.augment_config import AugmentConfig
from rar_keras.backbones.efficientnet_stages import check_repeats

BACKBONES = ("mobile", "efficientnet_lite0", "efficientnet_lite2", "vgg19")
DECODERS = ("transposed", "separable")
DECODE_MODES = ("local", "global")      # HeatmapDecoder modes (kept free of TensorFlow here)
STAGES = ("detector", "refiner", "joint")
BACKBONE_INITS = ("", "imagenet")
# Start-shape modes: `RobustShapeInit`'s (kept free of TensorFlow here), and "shape_fit"
# (`HeatmapShapeFit`, a layer the model holds only when its config starts that way).
SHAPE_FIT_MODE = "shape_fit"
SHAPE_FIT_WEIGHTS = "shape_fit/"    # the layer path of its shape model's weights, derived from training shapes
SHAPE_PRIOR_WEIGHTS = "shape_posterior/"  # the layer path of the output's shape prior, derived from training shapes
# Every weight fitted from training shapes rather than trained (`RARLandmarker.fit_shape_model`).
SHAPE_MODEL_WEIGHTS = (SHAPE_FIT_WEIGHTS, SHAPE_PRIOR_WEIGHTS)
POSTERIOR_STAGE = "posterior"   # the stage after S_T in per-step outputs of a model with a shape prior
OCCLUDER_MASK_WEIGHTS = "occluder_mask/"   # the layer path of the occluder mask head (`tools.fit_occluder_mask`)
START_MODES = ("robust", "robust_blend", "detected", "mean", "random", SHAPE_FIT_MODE)
REFINE_CRITERIA = ("smooth_l1", "wing")     # models.losses.refinement_loss kinds (kept free of TensorFlow here)
# Every backbone encodes to stride 16 and decodes back through stride 8: the encoder's feature maps
# line up with the decoder's only when the crop side is a multiple of this.
ENCODER_STRIDE = 16


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _known(cls, values: dict) -> dict:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(known)}")
    return dict(values)


def _owner(key: str, sections: dict) -> tuple[str | None, str]:
    """(section, field) of an override key: "steps", "model.steps", "augment.rotation"."""
    prefix, dot, field = key.rpartition(".")
    augment = sections["training"]["augment"]
    if dot:
        table = augment if prefix == "augment" else sections.get(prefix)
        return (prefix, field) if table is not None and field in table else (None, key)
    for section, table in (("model", sections["model"]), ("training", sections["training"]),
                           ("augment", augment)):
        if key in table and key != "augment":
            return section, key
    return None, key


# A box-relative offset beyond this is no annotation convention but a wrong model or wrong data.
MAX_LANDMARK_OFFSET = 0.05


def _check_offset(value) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"landmark_offset must be two numbers [x, y] (fractions of the face box's side), "
                         f"got {value!r}") from None
    if not (abs(x) <= MAX_LANDMARK_OFFSET and abs(y) <= MAX_LANDMARK_OFFSET):
        raise ValueError(f"landmark_offset {[x, y]}: each must be at most {MAX_LANDMARK_OFFSET} "
                         f"({MAX_LANDMARK_OFFSET:.0%} of the face box's side) in magnitude")
    return (x, y)


@dataclasses.dataclass(frozen=True)
class RARConfig:
    """The architecture of a RAR landmarker: everything needed to rebuild it from a preset.

    Args:
        scheme: landmark scheme name ("300w68", "cofw29", "aflw19", "wflw98").
        input_size: side of the square face crop fed to the model, in pixels.
        margin: context around the face box when cropping (fraction of its longer side).
        backbone: "mobile" (MobileNetV2-style, trains on CPUs), "efficientnet_lite0" (ImageNet
            weights available offline), "efficientnet_lite2" (wider and deeper, ImageNet weights
            offline; for teachers and servers) or "vgg19" (the paper's, for GPUs).
        width: channel multiplier of the mobile and VGG19 backbones.
        encoder_repeats: EfficientNet-Lite backbones: blocks kept per encoder stage (the first ones
            of each), e.g. [1, 1, 2, 2, 2]: a Lite0 encoder whose int8 file at 128 px takes about
            0.3x MediaPipe's time less; empty (the default) keeps the variant's full depth.
        decoder: the landmark decoder, "transposed" or "separable" (see `LandmarkDecoder`).
        first_expansion: expansion of the mobile backbone's first stage.
        batch_norm_momentum: moving-average momentum of the backbone's batch norms.
        heatmap_stride: input pixels per heatmap cell (conv8 resolution).
        feature_channels: channels of the stride-4 features sampled by SIP.
        steps: number T of attentive refinement steps.
        alpha: scale of each refinement update, in units of the face's RMS radius.
        kappa: peak of the attention weights gamma.
        attention_radius: width of the attention weights, as a fraction of the face's RMS radius.
        lstm_units: units of the A-LSTM and R-LSTM cells.
        refine_channels: size of each landmark's features in the refiner.
        context_channels: size of each landmark's context from the R-LSTM.
        hidden_units: width of the per-landmark networks (refiner, visibility head).
        fine_patch: side of the patch of stride-2 features the refiner reads around each landmark.
        heatmap_patch: side of the patch of each landmark's own conv8 probabilities read around it.
        bank_size: K shapes in the shape bank (the "random" start of the comparison study).
        shape_components: principal modes of the shape model the robust start fits.
        fit_iterations: reweighting rounds of the robust fit.
        robust_scale: the robust fit's residual scale tau, as a fraction of the face's RMS radius.
        subpixel: refine the heatmap argmax with a local expectation ("local" decode).
        decode: how S_d is read from the heatmaps: "local" (argmax and local expectation) or
            "global" (soft-argmax over the whole map; see `HeatmapDecoder`).
        decode_temperature: "global" decode: the softmax temperature (below 1 sharpens it).
        init_mode: how inference picks the start shape S_0: one of `START_MODES` (see
            `RobustShapeInit`; "shape_fit": `HeatmapShapeFit`).
        shape_fit_components: "shape_fit": modes of its Gaussian shape model.
        shape_fit_radii: "shape_fit": the kernel radius of each mean-shift round, in heatmap cells.
        shape_fit_em_steps: "shape_fit": coefficient steps per round.
        shape_fit_ridge: "shape_fit": the prior's point noise variance (shapes of unit RMS radius).
        shape_prior: the model holds a `ShapePosterior`: its output is the posterior mean of the
            refined shape under a Gaussian prior of training shapes, each point trusted by its
            predicted visibility (`make_preset --shape-data` or training fits the prior).
        shape_prior_visible_noise: "shape_prior": the noise variance of a point predicted visible
            (shapes of unit RMS radius).
        shape_prior_hidden_noise: "shape_prior": the noise variance of a point predicted hidden.
        shape_prior_steps: "shape_prior": the conjugate-gradient steps of the posterior.
        occluder_mask: the model holds an `OccluderMaskHead` and runs twice: the detector's first
            pass finds where occluders cover the crop, that region is painted grey, and the whole
            pipeline runs on the painted crop (`python -m tools.fit_occluder_mask` trains the head).
        occluder_mask_channels: the head's width.
        occluder_mask_dilations: the dilation of each of the head's 3x3 convolutions (its depth and
            how far around a cell it looks).
        occluder_mask_threshold: the probability above which a crop pixel is painted over.
        occluder_mask_fill: the grey level (0..255) painted over it.
        landmark_offset: (x, y) added to every shape the model outputs, in units of the face box's
            longer side (the side that `margin` pads). A model trained on mirrored crops cannot learn
            an annotation convention that is not mirror-symmetric (points marked a fraction of a
            pixel right of the feature they name: mirroring moves them left); this puts the
            annotations' mean offset back. `python -m tools.fit_landmark_offset` measures it on
            training faces (docs/LANDMARK_OFFSET.md).

    Example:
        >>> config = EXPERIMENTS["w300_mobile"].model.replace(steps=4)
    """

    scheme: str = "300w68"
    input_size: int = 128
    margin: float = 0.25
    backbone: str = "mobile"
    width: float = 1.0
    encoder_repeats: tuple[int, ...] = ()
    decoder: str = "transposed"
    first_expansion: int = 4
    batch_norm_momentum: float = 0.99
    heatmap_stride: int = 4
    feature_channels: int = 64
    steps: int = 3
    alpha: float = 0.1
    kappa: float = 1.0
    attention_radius: float = 0.5
    lstm_units: int = 64
    refine_channels: int = 32
    context_channels: int = 16
    hidden_units: int = 64
    fine_patch: int = 3
    heatmap_patch: int = 5
    bank_size: int = 32
    shape_components: int = 16
    fit_iterations: int = 3
    robust_scale: float = 0.1
    subpixel: bool = True
    decode: str = "local"
    decode_temperature: float = 1.0
    init_mode: str = "robust"
    shape_fit_components: int = 30
    shape_fit_radii: tuple[float, ...] = (3.0, 2.0, 1.0)
    shape_fit_em_steps: int = 3
    shape_fit_ridge: float = 0.003
    shape_prior: bool = False
    shape_prior_visible_noise: float = 1e-4
    shape_prior_hidden_noise: float = 1e-2
    shape_prior_steps: int = 16
    occluder_mask: bool = False
    occluder_mask_channels: int = 64
    occluder_mask_dilations: tuple[int, ...] = (1, 2, 4, 8)
    occluder_mask_threshold: float = 0.5
    occluder_mask_fill: float = 128.0
    landmark_offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        if self.input_size % self.heatmap_stride:
            raise ValueError(f"input_size {self.input_size} must be a multiple of heatmap_stride "
                             f"{self.heatmap_stride}")
        if self.input_size % ENCODER_STRIDE:
            lower = max(ENCODER_STRIDE, self.input_size // ENCODER_STRIDE * ENCODER_STRIDE)
            raise ValueError(f"input_size {self.input_size} must be a multiple of the encoder's stride "
                             f"{ENCODER_STRIDE} (e.g. {lower} or {lower + ENCODER_STRIDE})")
        _check_choice("decoder", self.decoder, DECODERS)
        _check_choice("decode", self.decode, DECODE_MODES)
        if not self.decode_temperature > 0:
            raise ValueError(f"decode_temperature must be positive, got {self.decode_temperature!r}")
        _check_choice("backbone", self.backbone, BACKBONES)
        _check_choice("init_mode", self.init_mode, START_MODES)
        object.__setattr__(self, "shape_fit_radii", tuple(float(r) for r in self.shape_fit_radii))
        if not self.shape_fit_radii or min(self.shape_fit_radii) <= 0:
            raise ValueError(f"shape_fit_radii must be positive heatmap cells, got {list(self.shape_fit_radii)}")
        if self.shape_fit_components < 1 or self.shape_fit_em_steps < 1 or not self.shape_fit_ridge > 0:
            raise ValueError(f"shape_fit_components and shape_fit_em_steps must be >= 1 and shape_fit_ridge > 0, got "
                             f"{self.shape_fit_components}, {self.shape_fit_em_steps}, {self.shape_fit_ridge}")
        if not isinstance(self.shape_prior, bool):
            raise ValueError(f"shape_prior must be true or false, got {self.shape_prior!r}")
        if not 0.0 < self.shape_prior_visible_noise <= self.shape_prior_hidden_noise or self.shape_prior_steps < 1:
            raise ValueError(f"need 0 < shape_prior_visible_noise <= shape_prior_hidden_noise and shape_prior_steps "
                             f">= 1, got {self.shape_prior_visible_noise}, {self.shape_prior_hidden_noise}, "
                             f"{self.shape_prior_steps}")
        object.__setattr__(self, "occluder_mask_dilations", tuple(int(d) for d in self.occluder_mask_dilations))
        if not self.occluder_mask_dilations or min(self.occluder_mask_dilations) < 1:
            raise ValueError(f"occluder_mask_dilations must be dilation rates >= 1, got "
                             f"{list(self.occluder_mask_dilations)}")
        if not isinstance(self.occluder_mask, bool):
            raise ValueError(f"occluder_mask must be true or false, got {self.occluder_mask!r}")
        if (self.occluder_mask_channels < 1 or not 0.0 < self.occluder_mask_threshold < 1.0
                or not 0.0 <= self.occluder_mask_fill <= 255.0):
            raise ValueError(f"occluder_mask_channels must be >= 1, occluder_mask_threshold in (0, 1) and "
                             f"occluder_mask_fill in 0..255, got {self.occluder_mask_channels}, "
                             f"{self.occluder_mask_threshold}, {self.occluder_mask_fill}")
        object.__setattr__(self, "landmark_offset", _check_offset(self.landmark_offset))
        if self.encoder_repeats:
            if self.efficientnet_variant is None:
                raise ValueError(f"encoder_repeats needs an EfficientNet-Lite backbone, got backbone "
                                 f"{self.backbone!r}")
            object.__setattr__(self, "encoder_repeats", check_repeats(self.efficientnet_variant,
                                                                      self.encoder_repeats))
        else:
            object.__setattr__(self, "encoder_repeats", ())

    @property
    def efficientnet_variant(self) -> str | None:
        """The EfficientNet-Lite variant of the backbone ("lite0", "lite2"), None for the others."""
        return self.backbone.removeprefix("efficientnet_") if self.backbone.startswith("efficientnet_") else None

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.heatmap_stride

    @property
    def landmark_offset_pixels(self) -> tuple[float, float]:
        """`landmark_offset` in crop pixels: the face box's longer side spans input_size / (1 + margin)."""
        box_side = self.input_size / (1.0 + self.margin)
        return (self.landmark_offset[0] * box_side, self.landmark_offset[1] * box_side)

    def replace(self, **changes) -> "RARConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RARConfig":
        return cls(**_known(cls, values))


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How a RAR landmarker is trained: optimisation, stages, losses and augmentation.

    Args:
        backbone_init: "" (random) or "imagenet" (the EfficientNet-Lite encoder's ImageNet weights,
            read offline by `rar_keras.backbones.imagenet`).
        stages: training stages as (name, fraction of the epochs); names are "detector"
            (the backbone and the visibility head, without the refiner's losses), "refiner"
            (backbone frozen, no heatmap, decode or distillation loss) and "joint".
        learning_rate, batch_size, weight_decay: optimisation (AdamW, cosine decay).
        warmup_fraction: share of the steps over which the learning rate climbs linearly from 0.
        ema_momentum: momentum of an exponential moving average of the trainable weights (the
            optimizer's `use_ema`); validation, checkpoints and the saved model then use the average
            (batch-norm statistics stay those of the raw weights). 0 leaves it off.
        seed: seed of the bank, the RANSAC pairs and the data order.
        sample_attention: sample the attention centre in training (REINFORCE); False takes the argmax.
        eta: discount of the attention reward over steps.
        heatmap_sigma: width of the target distribution, in heatmap cells.
        heatmap_weight, visibility_weight, refine_weight, attention_weight: loss weights.
        refine_criterion: the per-coordinate loss of the refined shapes (logged as `refine_loss`):
            "smooth_l1" (quadratic below 0.02 D*, linear above) or "wing" (logarithmic below 0.1 D*:
            small errors weigh more).
        decode_weight: weight of the decoded detector shape S_d's smooth-L1 distance to the truth
            (`losses.decode_loss`), in the detector and joint stages; 0 leaves it out. It needs the
            model's `subpixel` or "global" decode: a plain argmax has no gradient.
        ambiguity_weight: weight of the heatmaps' STAR-style anisotropic regression
            (`losses.ambiguity_loss`), in the detector and joint stages; 0 leaves it out.
        ambiguity_omega: weight of the heatmaps' covariance trace within that loss.
        value_weight: weight of the attention baseline's regression within the attention loss.
        distill_weight: weight of the distillation loss when a teacher is given (`rar_keras.train
            --teacher`): the KL divergence from the teacher's conv8 heatmaps to the model's.
        distill_flip: the teacher's heatmaps are the flip test's: the mean of its logits on the crop
            and on the mirrored crop (mirrored back, left and right landmarks swapped); twice its compute.
        distill_native: each training face is rendered at the finest teacher's pixel scale instead
            (`datasets.pipeline.train_dataset`'s `render_size`), and the teachers see that crop rather
            than this model's crop resampled to their input size: a 192 px teacher then sees 192 px of
            detail, not a 112 px crop enlarged. This model's crop is the rendered one shrunk (bilinear,
            not anti-aliased), with the same augmentation. Validation has no rendered crops: there
            (`val_distill_loss`) the teachers see this model's crops enlarged.
        entropy_weight: entropy bonus of the attention policy.
        start_truth_prob: share of training faces whose refinement starts from the truth plus noise.
        start_mean_prob: share that starts from the mean shape (the rest: the robust start).
        start_noise: (min, max) noise of those starts, as a fraction of the face's RMS radius.
        augment: the random augmentation of each training face.
    """

    backbone_init: str = ""
    stages: tuple = (("joint", 1.0),)
    learning_rate: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.0
    ema_momentum: float = 0.0
    seed: int = 0
    sample_attention: bool = True
    eta: float = 0.9
    heatmap_sigma: float = 1.0
    heatmap_weight: float = 1.0
    decode_weight: float = 0.0
    ambiguity_weight: float = 0.0
    ambiguity_omega: float = 1.0
    visibility_weight: float = 0.5
    refine_weight: float = 1.0
    refine_criterion: str = "smooth_l1"
    attention_weight: float = 0.1
    value_weight: float = 0.1
    entropy_weight: float = 0.01
    distill_weight: float = 1.0
    distill_flip: bool = False
    distill_native: bool = False
    start_truth_prob: float = 0.4
    start_mean_prob: float = 0.1
    start_noise: tuple = (0.02, 0.1)
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self):
        _check_choice("backbone_init", self.backbone_init, BACKBONE_INITS)
        _check_choice("refine_criterion", self.refine_criterion, REFINE_CRITERIA)
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1), got {self.ema_momentum}")
        for name, _ in self.stages:
            if name not in STAGES:
                raise ValueError(f"unknown training stage {name!r}: use one of {STAGES}")
        object.__setattr__(self, "stages", tuple((str(n), float(f)) for n, f in self.stages))
        object.__setattr__(self, "start_noise", tuple(float(v) for v in self.start_noise))
        if not 0.0 <= self.start_truth_prob + self.start_mean_prob <= 1.0:
            raise ValueError("start_truth_prob + start_mean_prob must be in [0, 1]")
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentConfig(**_known(AugmentConfig, self.augment)))

    def replace(self, **changes) -> "TrainingConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["stages"] = [list(s) for s in self.stages]
        values["start_noise"] = list(self.start_noise)
        values["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in values["augment"].items()}
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        values = dict(_known(cls, values))
        if "augment" in values:
            augment = _known(AugmentConfig, values["augment"])
            values["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in augment.items()})
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One named model/training pair, e.g. `EXPERIMENTS["w300_mobile"]`.

    Args:
        model: the architecture.
        training: how it is trained.
    """

    model: RARConfig = RARConfig()
    training: TrainingConfig = TrainingConfig()

    def __post_init__(self):
        if self.training.backbone_init == "imagenet" and self.imagenet_variant is None:
            raise ValueError(f"backbone_init 'imagenet' needs an EfficientNet-Lite backbone "
                             f"(efficientnet_lite0 or efficientnet_lite2), got backbone {self.model.backbone!r}")

    @property
    def imagenet_variant(self) -> str | None:
        """The EfficientNet-Lite variant ("lite0", "lite2") whose ImageNet weights fit the backbone."""
        return self.model.efficientnet_variant

    def override(self, items: list[str]) -> "Experiment":
        """Applies `KEY=VALUE` overrides; KEY names a field of the model, the training or the
        augmentation (bare, or as `model.KEY`, `training.KEY`, `augment.KEY`); VALUE is JSON
        when it parses as JSON, else a string."""
        sections = {"model": self.model.to_dict(), "training": self.training.to_dict()}
        for item in items:
            key, sep, raw = item.partition("=")
            section, field = _owner(key, sections)
            if not sep or section is None:
                raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of "
                                 f"{sorted(set(sections['model']) | set(sections['training']) | set(sections['training']['augment']))}")
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            target = sections["training"]["augment"] if section == "augment" else sections[section]
            target[field] = value
        return Experiment.from_dict(sections)

    def to_dict(self) -> dict:
        return {"model": self.model.to_dict(), "training": self.training.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "Experiment":
        unknown = set(values) - {"model", "training"}
        if unknown:
            raise ValueError(f"unknown experiment sections {sorted(unknown)}; expected 'model' and 'training'")
        return cls(RARConfig.from_dict(values.get("model", {})), TrainingConfig.from_dict(values.get("training", {})))

    def save(self, path) -> None:
        pathlib.Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> "Experiment":
        return cls.from_dict(json.loads(pathlib.Path(path).read_text()))


# Sized for phones (`python -m export.benchmark`): EfficientNet-Lite0's encoder to stride 16, started
# from its ImageNet weights, and the separable decoder.
PHONE = RARConfig(backbone="efficientnet_lite0", decoder="separable", feature_channels=64)
PHONE_TRAINING = TrainingConfig(backbone_init="imagenet", stages=(("detector", 0.2), ("joint", 0.8)))
# The MobileNetV2-style backbone, trained from scratch.
MOBILENET = RARConfig(decoder="separable", first_expansion=1, feature_channels=48)

# One named experiment per dataset/model pair.
EXPERIMENTS = {
    "w300_mobile": Experiment(PHONE.replace(scheme="300w68"), PHONE_TRAINING),
    "cofw_mobile": Experiment(PHONE.replace(scheme="cofw29"), PHONE_TRAINING),
    "aflw_mobile": Experiment(PHONE.replace(scheme="aflw19"), PHONE_TRAINING),
    "wflw_mobile": Experiment(PHONE.replace(scheme="wflw98"), PHONE_TRAINING),
    # A wider and deeper encoder for teachers and servers.
    "w300_lite2": Experiment(PHONE.replace(scheme="300w68", backbone="efficientnet_lite2"), PHONE_TRAINING),
    "w300_mobilenet": Experiment(MOBILENET.replace(scheme="300w68"), PHONE_TRAINING.replace(backbone_init="")),
    "w300_vgg19": Experiment(RARConfig(scheme="300w68", backbone="vgg19", input_size=256, heatmap_stride=4,
                                       feature_channels=128, lstm_units=256, hidden_units=128),
                             TrainingConfig(batch_size=16, learning_rate=5e-4,
                                            stages=(("detector", 0.5), ("joint", 0.5)))),
    "tiny": Experiment(RARConfig(scheme="300w68", input_size=64, width=0.25, batch_norm_momentum=0.8,
                                 feature_channels=16, lstm_units=16, refine_channels=16, context_channels=4,
                                 hidden_units=16, bank_size=4, shape_components=4, steps=2),
                       TrainingConfig(batch_size=4)),
}


def get_experiment(name_or_path: str) -> Experiment:
    """A named experiment, or a JSON file written by `Experiment.save`."""
    if name_or_path in EXPERIMENTS:
        return EXPERIMENTS[name_or_path]
    path = pathlib.Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return Experiment.load(path)
    raise ValueError(f"unknown config {name_or_path!r}: use one of {sorted(EXPERIMENTS)} or a .json file")
