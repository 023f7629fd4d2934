"""What the training augmentation draws (`AugmentConfig`), without TensorFlow: configs import it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation applied to each training face.

    Args:
        rotation: maximum rotation in degrees (uniform in +-rotation).
        scale: (min, max) zoom of the face, uniform.
        shift: maximum translation as a fraction of the crop side, per axis.
        flip_prob: probability of a horizontal flip (landmarks are re-labelled
            with the scheme's flip permutation).
        brightness: maximum additive brightness change, as a fraction of 255.
        contrast: contrast factor drawn from 1 +- contrast.
        saturation: saturation factor drawn from 1 +- saturation.
        greyscale_prob: probability of turning the face grey (3 equal channels).
        occluder_prob: probability of drawing a synthetic occluder.
        second_occluder_prob: probability of drawing a second one.
        occluder_area: (min, max) fraction of the crop area it covers.
        occluder_aspect: (min, max) width/height ratio, log-uniform.
        ellipse_prob: probability that the occluder is an ellipse, else a rectangle.
        photo_prob: probability that it is filled with a patch of another face (else noise or
            a flat colour).
        noise_prob: probability that a non-photo occluder is filled with noise, else a flat colour.

    Example:
        >>> config = AugmentConfig(rotation=15.0, occluder_prob=0.0)
    """

    rotation: float = 30.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08
    flip_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.3
    saturation: float = 0.3
    greyscale_prob: float = 0.1
    occluder_prob: float = 0.4
    second_occluder_prob: float = 0.2
    occluder_area: tuple[float, float] = (0.05, 0.30)
    occluder_aspect: tuple[float, float] = (0.5, 2.0)
    ellipse_prob: float = 0.5
    photo_prob: float = 0.4
    noise_prob: float = 0.5

    def __post_init__(self):
        probs = {name: getattr(self, name) for name in
                 ("flip_prob", "greyscale_prob", "occluder_prob", "second_occluder_prob", "ellipse_prob",
                  "photo_prob", "noise_prob")}
        for name, value in probs.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be a probability in [0, 1], got {value}")
        for name in ("rotation", "shift", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name, (low, high), floor in (("scale", self.scale, 0.0), ("occluder_area", self.occluder_area, 0.0),
                                         ("occluder_aspect", self.occluder_aspect, 0.0)):
            if not floor < low <= high:
                raise ValueError(f"AugmentConfig.{name} must be (min, max) with 0 < min <= max, got {(low, high)}")
        if self.occluder_area[1] > 1.0:
            raise ValueError(f"AugmentConfig.occluder_area max must be <= 1, got {self.occluder_area[1]}")


# No augmentation at all: the plain model crop.
NO_AUGMENT = AugmentConfig(rotation=0.0, scale=(1.0, 1.0), shift=0.0, flip_prob=0.0, brightness=0.0,
                           contrast=0.0, saturation=0.0, greyscale_prob=0.0, occluder_prob=0.0,
                           second_occluder_prob=0.0)
