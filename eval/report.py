"""Evaluation summaries: the metrics dict (metrics.json), the printed table and per_face.csv."""

from __future__ import annotations

import csv
import json
from typing import Mapping, Sequence

import numpy as np

from eval.metrics import FAILURE_THRESHOLDS, NORMALIZER_NAMES, auc, failure_rate


def threshold_tag(threshold: float) -> str:
    """0.08 -> "8" (as in the keys fr_8, auc_8)."""
    return f"{threshold * 100:g}"


def mean_finite(values: np.ndarray) -> float:
    """Mean over finite values (faces the detector missed have NME = inf); NaN when none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def summarize(nmes: Mapping[str, np.ndarray], fr_normalizer: str,
              thresholds: Sequence[float] = FAILURE_THRESHOLDS) -> dict:
    """Dataset figures, fractions: nme_<kind> for each normaliser; fr_<t>, auc_<t> on `fr_normalizer`."""
    summary = {f"nme_{kind}": mean_finite(values) for kind, values in nmes.items()}
    for t in thresholds:
        summary[f"fr_{threshold_tag(t)}"] = failure_rate(nmes[fr_normalizer], t)
        summary[f"auc_{threshold_tag(t)}"] = auc(nmes[fr_normalizer], t)
    return summary


def _percent(value) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value * 100:.2f} %"


def format_table(summary: Mapping, title: str, fr_normalizer: str,
                 thresholds: Sequence[float] = FAILURE_THRESHOLDS) -> str:
    """The human table, in percent, naming every normaliser."""
    rows = [(f"NME {key[4:]} ({NORMALIZER_NAMES[key[4:]]})", f"{summary[key] * 100:.2f} %")
            for key in summary if key.startswith("nme_") and key[4:] in NORMALIZER_NAMES]
    fr_name = NORMALIZER_NAMES[fr_normalizer]
    for t in thresholds:
        tag = threshold_tag(t)
        rows.append((f"failure rate NME {fr_normalizer} > {tag} %", f"{summary[f'fr_{tag}'] * 100:.2f} %"))
        rows.append((f"AUC@{tag} % {fr_normalizer} ({fr_name})", f"{summary[f'auc_{tag}'] * 100:.2f} %"))
    for kind in NORMALIZER_NAMES:
        if f"nme_{kind}_visible" in summary:
            rows.append((f"NME {kind} over visible points", _percent(summary[f"nme_{kind}_visible"])))
    if "visibility_auc" in summary:
        rows.append(("visibility AUC (occlusion flags)", _percent(summary["visibility_auc"])))
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name:<{width}}  {value:>9}" for name, value in rows)])


def format_steps_table(steps: Mapping[str, Mapping[str, float]]) -> str:
    """Per-stage NME table: stage -> {normaliser kind: NME fraction}."""
    kinds = list(next(iter(steps.values())))
    width = max(len(stage) for stage in steps)
    header = f"  {'stage':<{width}}" + "".join(f"  {('NME ' + k):>10}" for k in kinds)
    lines = [f"  {stage:<{width}}" + "".join(f"  {values[k] * 100:>8.2f} %" for k in kinds)
             for stage, values in steps.items()]
    return "\n".join(["NME per step", header, *lines])


def write_json(path, payload: Mapping) -> None:
    """metrics.json; non-finite numbers written as null."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    with open(path, "w") as f:
        json.dump(clean(dict(payload)), f, indent=2)
        f.write("\n")


def write_per_face_csv(path, paths: Sequence[str], nmes: Mapping[str, np.ndarray], found: np.ndarray) -> None:
    """per_face.csv: path, nme_<kind>... (fractions; "inf" where the detector missed), face_found."""
    kinds = list(nmes)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", *(f"nme_{k}" for k in kinds), "face_found"])
        for i, face_path in enumerate(paths):
            writer.writerow([face_path, *(f"{nmes[k][i]:.6f}" for k in kinds), int(found[i])])
