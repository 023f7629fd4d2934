"""A per-face quality score in [0, 1]: how likely the landmarks are right, from the model's own outputs.

Two features of every face: the mean log peak probability of its landmark heatmaps (`confidence`)
and its mean predicted visibility. A logistic model on them is fitted on validation faces
(`python -m tools.fit_quality`): positives the faces the preset gets right (NME ip under 8 %),
negatives the faces it gets wrong and crops of no face at all. The fit is stored beside the
weights (`quality.json` in the preset folder, and in the contract of files exported from it).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Optional

import numpy as np

from datasets.errors import DataError

QUALITY_FILE = "quality.json"
FEATURES = ("mean_log_confidence", "mean_visibility")
CONFIDENCE_FLOOR = 1e-4


def quality_features(confidence, visibility=None) -> np.ndarray:
    """(N, 2) features of N faces from their (N, L) peak probabilities and visibility."""
    confidence = np.asarray(confidence, np.float64)
    seen = np.ones_like(confidence) if visibility is None else np.asarray(visibility, np.float64)
    return np.stack([np.log(np.maximum(confidence, CONFIDENCE_FLOOR)).mean(-1), seen.mean(-1)], -1)


@dataclasses.dataclass(frozen=True)
class QualityModel:
    """quality = sigmoid(weights . features + bias).

    Args:
        weights: one per feature (`FEATURES`).
        bias: the intercept.
        details: how it was fitted (faces, AUC), kept with it.
    """

    weights: tuple
    bias: float
    details: Optional[dict] = None

    def __call__(self, confidence, visibility=None) -> np.ndarray:
        score = quality_features(confidence, visibility) @ np.asarray(self.weights, np.float64) + self.bias
        return (1.0 / (1.0 + np.exp(-score))).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "weights": [float(w) for w in self.weights], "bias": float(self.bias),
                **({"details": self.details} if self.details else {})}

    @classmethod
    def from_dict(cls, values: dict, source: str = "quality") -> "QualityModel":
        if values.get("features") != list(FEATURES) or len(values.get("weights", ())) != len(FEATURES):
            raise DataError(f"{source}: expected a quality model on features {list(FEATURES)}")
        return cls(tuple(float(w) for w in values["weights"]), float(values["bias"]), values.get("details"))


def read_quality(folder) -> Optional[QualityModel]:
    """A preset folder's quality model, or None when it has none."""
    path = pathlib.Path(folder) / QUALITY_FILE
    if not path.is_file():
        return None
    try:
        return QualityModel.from_dict(json.loads(path.read_text()), str(path))
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a readable quality model ({error})") from None
