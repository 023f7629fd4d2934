"""Every hyper-parameter of a RAR model in one serialisable config, and the named configurations."""

from __future__ import annotations

import dataclasses
import json
import pathlib


@dataclasses.dataclass(frozen=True)
class RARConfig:
    """Hyper-parameters of a RAR landmarker and of its training.

    Args:
        scheme: landmark scheme name ("300w68", "cofw29", "aflw19", "wflw98").
        input_size: side of the square face crop fed to the model, in pixels.
        margin: context around the face box when cropping (fraction of its longer side).
        backbone: "mobile" (trains on CPUs) or "vgg19" (the paper's, for GPUs).
        width: channel multiplier of the backbone.
        decoder: the mobile backbone's decoder, "transposed" or "separable" (see `MobileBackbone`).
        first_expansion: expansion of the mobile backbone's first stage.
        batch_norm_momentum: moving-average momentum of the backbone's batch norms (lower for
            short runs, so inference statistics catch up).
        heatmap_stride: input pixels per heatmap cell (conv8 resolution).
        feature_channels: channels of the features sampled by SIP.
        steps: number T of attentive refinement steps.
        alpha: step size of the refinement update (in face-scale units).
        kappa: peak of the attention weights gamma.
        eta: discount of the attention reward over steps.
        lstm_units: units of the A-LSTM and R-LSTM cells.
        sip_channels: per-landmark feature size after SIP's projection.
        sip_patch: side of the patch SIP samples around each landmark (1 = the point).
        heatmap_patch: side of the patch of each landmark's own conv8 probabilities the refiner
            also reads (0 = none).
        heatmap_channels: projection size of that patch.
        bank_size: K shapes in the shape bank.
        ransac_pairs: landmark pairs tried as RANSAC hypotheses per bank shape.
        inlier_threshold: inlier distance for the robust start, as a fraction of the face size.
        subpixel: refine the heatmap argmax with a local expectation.
        init_mode: how inference picks the start shape S_0 (see `RobustShapeInit`).
        sample_attention: sample the attention centre in training (REINFORCE); False takes the argmax.
        heatmap_sigma: width of the target distribution, in heatmap cells.
        heatmap_weight, refine_weight, attention_weight: loss weights.
        stages: training stages as (name, fraction of the epochs); names are
            "detector" (heatmap loss only), "refiner" (backbone frozen) and "joint".
        learning_rate, batch_size, weight_decay: optimisation.
        warmup_fraction: share of the steps over which the learning rate climbs linearly from 0
            (then cosine decay); useful when fine-tuning with `--init-from`.
        seed: seed of the bank, the RANSAC pairs and the data order.
    """

    scheme: str = "300w68"
    input_size: int = 128
    margin: float = 0.25
    backbone: str = "mobile"
    width: float = 1.0
    decoder: str = "transposed"
    first_expansion: int = 4
    batch_norm_momentum: float = 0.99
    heatmap_stride: int = 4
    feature_channels: int = 64
    steps: int = 3
    alpha: float = 0.5
    kappa: float = 1.0
    eta: float = 0.9
    lstm_units: int = 256
    sip_channels: int = 16
    sip_patch: int = 1
    heatmap_patch: int = 0
    heatmap_channels: int = 8
    bank_size: int = 32
    ransac_pairs: int = 24
    inlier_threshold: float = 0.08
    subpixel: bool = True
    init_mode: str = "robust"
    sample_attention: bool = True
    heatmap_sigma: float = 1.0
    heatmap_weight: float = 1.0
    refine_weight: float = 1.0
    attention_weight: float = 0.05
    stages: tuple = (("joint", 1.0),)
    learning_rate: float = 2e-3
    batch_size: int = 32
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.input_size % self.heatmap_stride:
            raise ValueError(f"input_size {self.input_size} must be a multiple of heatmap_stride "
                             f"{self.heatmap_stride}")
        if self.decoder not in ("transposed", "separable"):
            raise ValueError(f"decoder must be one of ('transposed', 'separable'), got {self.decoder!r}")
        if self.backbone not in ("mobile", "vgg19"):
            raise ValueError(f"backbone must be 'mobile' or 'vgg19', got {self.backbone!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        for name, _ in self.stages:
            if name not in ("detector", "refiner", "joint"):
                raise ValueError(f"unknown training stage {name!r}: use detector, refiner or joint")
        object.__setattr__(self, "stages", tuple((str(n), float(f)) for n, f in self.stages))

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.heatmap_stride

    def replace(self, **changes) -> "RARConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: [list(s) for s in v] if k == "stages" else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "RARConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def save(self, path) -> None:
        pathlib.Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> "RARConfig":
        return cls.from_dict(json.loads(pathlib.Path(path).read_text()))


# Sized for phones (DESIGN.md §3, `python -m export.benchmark`): separable decoder, MobileNetV2's
# unexpanded first stage, a narrow refiner.
MOBILE = RARConfig(decoder="separable", first_expansion=1, feature_channels=48, lstm_units=64,
                   sip_channels=8, sip_patch=3, heatmap_patch=5, ransac_pairs=12,
                   stages=(("detector", 0.2), ("joint", 0.8)))

# One named configuration per dataset/model pair.
CONFIGS = {
    "w300_mobile": MOBILE.replace(scheme="300w68"),
    "w300_vgg19": RARConfig(scheme="300w68", backbone="vgg19", input_size=256, heatmap_stride=4,
                            feature_channels=128, lstm_units=512, batch_size=16, learning_rate=5e-4,
                            stages=(("detector", 0.5), ("joint", 0.5))),
    "cofw_mobile": MOBILE.replace(scheme="cofw29"),
    "aflw_mobile": MOBILE.replace(scheme="aflw19"),
    "wflw_mobile": MOBILE.replace(scheme="wflw98"),
    "tiny": RARConfig(scheme="300w68", input_size=64, width=0.25, batch_norm_momentum=0.8, feature_channels=16, lstm_units=32,
                      sip_channels=4, bank_size=4, ransac_pairs=8, steps=2, batch_size=4),
}


def get_config(name_or_path: str) -> RARConfig:
    """A named configuration, or a JSON file written by `RARConfig.save`."""
    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = pathlib.Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return RARConfig.load(path)
    raise ValueError(f"unknown config {name_or_path!r}: use one of {sorted(CONFIGS)} or a .json file")
