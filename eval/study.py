"""`python -m eval.study`: the RAR paper's comparison of start shapes, on clean and occluded faces.

Rows: the conv8 argmax shape S_d alone, then the attentive refinement from each start: the mean
shape, a random bank shape, S_d directly, the robust start, and the heatmap shape fit when the main
model (or a `--start-model shape_fit=...`) holds its shape model. As in the paper, each start has
its own model when one is given (`--start-model MODE=MODEL`, e.g. a refiner trained from that
start with the backbone frozen, see the README); otherwise the main `--model` runs with its start
swapped at inference, and the table says so. For each row, NME (inter-pupil / outer eye corners)
of the start S_0 and after every step, and the failure rate at 10 % of the final shape, on the
clean faces (`--data`) and on an occluded copy (`--occluded-data`, e.g. from `python -m
eval.occlude`). Also, for the main model as it runs (its own start mode): how often each
landmark is the attention centre at each step (`attention.png`), the largest such share, the
share of occluded faces whose attention centre is a visible landmark, and pictures of a few faces
refined step by step.

Protocol (docs/EVALUATION.md): the face box is the tight box of the ground-truth landmarks,
cropped with the model's own margin; predictions go through `CropLandmarker` (the product's crop
path) and are compared with the annotations in image pixels.

Example:
    python -m eval.study --data $RAR_KERAS_DATA/300w/helen/testset --occluded-data occluded/helen \\
        --model w300_mobile --start-model mean=runs/start_mean/model.keras --out out/study

Writes DIR/study.md (also printed), DIR/study.json, DIR/attention.png and DIR/steps_<k>.png.
User errors print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.geometry import apply_affine, invert_affine
from datasets.loaders import load_records
from datasets.record import landmark_box
from eval import report
from eval.metrics import nme, normalizer
from eval.report import mean_finite
from eval.study_plots import region_of, save_attention_plot, save_steps_picture
from rar_keras.inference.crop_landmarker import CropLandmarker
from rar_keras.inference.keras_model import KerasCropModel, load_model
from rar_keras.models.config import POSTERIOR_STAGE
from rar_keras.utils.quiet import import_tensorflow

EXIT_USER_ERROR = 2
BATCH_SIZE = 32
NUM_TOP = 5                 # most frequent attention centres listed per step
NUM_BEST_PICTURES = 2       # faces with the largest S_0 -> S_T improvement (the main model's own start)
NUM_RANDOM_PICTURES = 2     # plus this many random faces
STUDY_MD, STUDY_JSON, ATTENTION_PNG = "study.md", "study.json", "attention.png"
DETECTED_ROW = "conv8 argmax alone"
# (row name, RobustShapeInit mode), in the order of the table.
INIT_ROWS = (("mean shape", "mean"), ("random bank shape", "random"), ("S_d directly", "detected"),
             ("robust (shape-model fit)", "robust"))
# Only a model that holds its shape model runs this start: the row is there when the main model or a
# --start-model for it does.
SHAPE_FIT_ROW = ("heatmap shape fit", "shape_fit")
# The paper's ablation (Xiao et al. 2016), NME ip % on 300-W full: a different test set, for orientation.
PAPER_300W_FULL_IP = {DETECTED_ROW: 6.24, "mean": 5.26, "random": 5.22, "detected": 6.66, "robust": 4.94}
FAILURE = 0.10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="clean test faces: a dataset file, or a folder of image + .pts")
    parser.add_argument("--occluded-data", help="an occluded copy of test faces (with occlusion flags)")
    parser.add_argument("--model", required=True, help="the main model: a preset name or folder, or a .keras file")
    parser.add_argument("--start-model", action="append", default=[], metavar="MODE=MODEL",
                        help="a model trained for one start (mean, random, detected, robust); repeatable")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random bank shapes and random pictures")
    parser.add_argument("--faces", type=int, help="use only the first N faces (loader order)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    return parser


# === Data and prediction ===
def _load_records(path: str, faces: Optional[int], scheme):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    records = load_records(path)
    if not records:
        raise DataError(f"{path}: no annotated faces found")
    if faces is not None:
        records = records[:faces]
    wrong = [r for r in records if r.landmarks.shape[0] != scheme.num_points]
    if wrong:
        raise DataError(f"{path}: {wrong[0].path} has {wrong[0].landmarks.shape[0]} landmarks; "
                        f"the model's scheme {scheme.name} has {scheme.num_points}")
    # Ground-truth box protocol: the tight box of the annotated landmarks.
    return [dataclasses.replace(r, box=landmark_box(r.landmarks)) for r in records]


def study_rows(main_has_shape_fit: bool, start_models) -> tuple:
    """The (row name, start mode) pairs of the study: every row of `INIT_ROWS`, and the heatmap shape
    fit's when some model given can run it."""
    return INIT_ROWS + ((SHAPE_FIT_ROW,) if main_has_shape_fit or SHAPE_FIT_ROW[1] in start_models else ())


def _start_models(specs: Sequence[str]) -> dict[str, str]:
    modes = {mode for _, mode in INIT_ROWS + (SHAPE_FIT_ROW,)}
    chosen = {}
    for spec in specs:
        mode, sep, model = spec.partition("=")
        if not sep or mode not in modes or not model:
            raise DataError(f"--start-model {spec!r}: expected MODE=MODEL with MODE one of {sorted(modes)}")
        chosen[mode] = model
    return chosen


def predict_steps(landmarker: CropLandmarker, records, mode: str, seed: int) -> dict[str, np.ndarray]:
    """Every stage in image pixels, the attention centres and the visibility, from start `mode`."""
    # TensorFlow is loaded by now (the models).
    import keras

    images = [r.image for r in records]
    boxes = np.stack([r.box for r in records])
    keras.utils.set_random_seed(seed)   # the "random" start draws from TF's global generator
    return landmarker.predict_steps(images, boxes, init_mode=mode)   # batched by the landmarker


# === Metrics ===
def _face_nmes(pred, gt, scheme) -> dict[str, np.ndarray]:
    return {kind: nme(pred, gt, normalizer(gt, scheme, kind)) for kind in ("ip", "io")}


def _entry(nmes: dict[str, np.ndarray]) -> dict:
    return {"nme_ip": mean_finite(nmes["ip"]), "nme_io": mean_finite(nmes["io"])}


def stage_figures(outputs: dict, gt, scheme) -> dict:
    """{"start", "steps": [S_1..S_T], "final" (with FR and AUC), "per_face_ip": (T+1, N)} of one run;
    the final shape is S_T, or the shape posterior of a model with a shape prior."""
    num_steps = sum(key.startswith("step_") for key in outputs)
    stages = [_face_nmes(outputs[f"step_{t}"], gt, scheme) for t in range(num_steps)]
    final = _face_nmes(outputs[POSTERIOR_STAGE], gt, scheme) if POSTERIOR_STAGE in outputs else stages[-1]
    return {"start": _entry(stages[0]), "steps": [_entry(s) for s in stages[1:]],
            "final": report.summarize(final, "ip"), "per_face_ip": np.stack([s["ip"] for s in stages])}


def attention_frequencies(attention: np.ndarray, num_points: int) -> np.ndarray:
    """(N, T) attention-centre indices -> (T, L) fraction of faces choosing each landmark at each step."""
    attention = np.asarray(attention, np.int64)
    if attention.size == 0:
        return np.zeros((attention.shape[1] if attention.ndim == 2 else 0, num_points))
    return np.stack([np.bincount(attention[:, t], minlength=num_points)[:num_points] / attention.shape[0]
                     for t in range(attention.shape[1])])


def visible_centre_share(attention: np.ndarray, visible: np.ndarray) -> list[float]:
    """Per step, the share of faces (with some landmark occluded) whose attention centre is visible."""
    attention = np.asarray(attention, np.int64)
    visible = np.asarray(visible, bool)
    occluded_faces = ~visible.all(-1)
    if not occluded_faces.any():
        return [float("nan")] * attention.shape[1]
    rows = np.flatnonzero(occluded_faces)
    return [float(visible[rows, attention[rows, t]].mean()) for t in range(attention.shape[1])]


def top_landmarks(frequencies: np.ndarray, scheme, count: int = NUM_TOP) -> list[list[dict]]:
    """Per step, the `count` most frequent attention centres: index, region, frequency."""
    out = []
    for freq in frequencies:
        order = np.argsort(-freq, kind="stable")[:count]
        out.append([{"index": int(i), "region": region_of(scheme, int(i)), "frequency": float(freq[i])}
                    for i in order if freq[i] > 0])
    return out


def pick_faces(improvement: np.ndarray, seed: int, best: int = NUM_BEST_PICTURES,
               random: int = NUM_RANDOM_PICTURES) -> list[tuple[int, str]]:
    """Faces to draw: the `best` largest improvements, then `random` others (seeded); (index, why)."""
    order = [int(i) for i in np.argsort(-np.nan_to_num(improvement, nan=-np.inf), kind="stable")]
    chosen = [(i, "largest S_0 -> S_T improvement") for i in order[:best]]
    rest = np.array(order[best:], dtype=np.int64)
    if rest.size:
        picked = np.random.default_rng(seed).choice(rest, size=min(random, rest.size), replace=False)
        chosen += [(int(i), "random") for i in picked]
    return chosen


# === Report ===
def _pct(value) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value * 100:.2f}"


def _cell(entry: Optional[dict]) -> str:
    return "—" if not entry else f"{_pct(entry['nme_ip'])} / {_pct(entry['nme_io'])}"


def format_markdown(study: dict) -> str:
    """study.md: the table, the attention summary and the pictures."""
    sets = [name for name in ("clean", "occluded") if study["sets"].get(name)]
    lines = [f"# RAR comparison study: {study['num_faces']} faces of {study['data']}", "",
             f"Main model `{study['model']}` ({study['scheme']}, {study['input_size']} px crops, T = "
             f"{study['steps']} refinement steps). Box: {study['box_protocol']}. Cells: NME ip / io in % "
             "(ip: inter-pupil, io: outer eye corners); FR@10: failure rate at 10 % NME ip of the final "
             f"shape, in %. Random bank shapes seeded with {study['seed']}.", ""]
    header = ["row", "model"] + [f"{name}: S_0" for name in sets] + [f"{name}: final" for name in sets] \
        + [f"{name}: FR@10" for name in sets] + ["paper ip (300-W full)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in study["rows"]:
        cells = [row["model_note"]]
        cells += [_cell(row[name]["start"]) for name in sets]
        cells += [_cell(row[name]["final"]) for name in sets]
        cells += [_pct(row[name]["final"]["fr_10"]) for name in sets]
        paper = row["paper_300w_full_nme_ip_percent"]
        cells.append("—" if paper is None else f"{paper:.2f}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    attention = study["attention"]
    lines += ["", "The final shape is S_T, or its shape posterior for a model with a shape prior. The conv8 "
              "row's S_0 and final shape are S_d itself. The paper column is the ablation of Xiao et al. "
              "(ECCV 2016) on 300-W full, NME ip: another test set and model, for orientation only.", "",
              f"## Attention centres (main model, {attention['init_mode']} start)", "",
              f"Frequency of each landmark as the attention centre per step: `{ATTENTION_PNG}`. Largest share of "
              "faces on one landmark per step: " + ", ".join(_pct(v) + " %" for v in attention["max_share"]) + ".",
              ""]
    for t, top in enumerate(attention["top"], start=1):
        listed = ", ".join(f"{e['index']} ({e['region']}, {e['frequency'] * 100:.1f} %)" for e in top)
        lines.append(f"- step {t}: {listed}")
    if "occluded" in attention:
        lines += ["", "Occluded faces: share whose attention centre is a visible landmark, per step: "
                  + ", ".join(_pct(v) + " %" for v in attention["occluded"]["visible_centre_share"])
                  + "; largest share on one landmark: "
                  + ", ".join(_pct(v) + " %" for v in attention["occluded"]["max_share"]) + "."]
    lines += ["", f"## Pictures (main model, {attention['init_mode']} start, clean faces)", ""]
    for pic in study["pictures"]:
        lines.append(f"- `{pic['file']}`: {pic['path']} ({pic['why']}; NME ip S_0 {_pct(pic['nme_ip_start'])} % "
                     f"-> S_T {_pct(pic['nme_ip_final'])} %)")
    return "\n".join(lines) + "\n"


def _json_ready(value):
    """Nested dicts/lists with non-finite floats as null (strict JSON); arrays as lists."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items() if k != "per_face_ip"}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# === Main ===
def _landmarker(spec: str) -> CropLandmarker:
    return _crop_landmarker(load_model(spec, "--model"))


def _crop_landmarker(model) -> CropLandmarker:
    return CropLandmarker(KerasCropModel(model, batch_size=BATCH_SIZE), batch_size=BATCH_SIZE)


def _save_pictures(out_dir, landmarker, records, outputs, per_face, detected_ip, scheme, seed) -> list[dict]:
    pictures = []
    num_steps = per_face.shape[0] - 1
    for k, (i, why) in enumerate(pick_faces(per_face[0] - per_face[-1], seed)):
        name = f"steps_{k}.png"
        crops, inverses = landmarker.crops([records[i].image], records[i].box[None])
        to_crop = invert_affine(inverses[0])
        steps = np.stack([apply_affine(outputs[f"step_{t}"][i], to_crop) for t in range(num_steps + 1)])
        save_steps_picture(crops[0], apply_affine(records[i].landmarks, to_crop),
                           apply_affine(outputs["detected"][i], to_crop), steps, outputs["attention"][i], scheme,
                           out_dir / name, [detected_ip[i], *per_face[:, i]],
                           title=f"{pathlib.Path(records[i].path).name} ({why})")
        pictures.append({"file": name, "path": records[i].path, "why": why,
                         "nme_ip_start": float(per_face[0, i]), "nme_ip_final": float(per_face[-1, i])})
    return pictures


def run_study(args) -> tuple[dict, str]:
    """Runs the study and writes its files; returns (study dict, markdown)."""
    if args.faces is not None and args.faces <= 0:
        raise DataError(f"--faces must be a positive number of faces, got {args.faces}")
    start_models = _start_models(args.start_model)
    for path in filter(None, (args.data, args.occluded_data)):
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file or folder")
    import_tensorflow(args.verbose)
    main_model = load_model(args.model, "--model")
    main, own_mode = _crop_landmarker(main_model), main_model.init_mode
    scheme, size, margin = main.scheme, main.input_size, main.margin
    sets = {"clean": _load_records(args.data, args.faces, scheme)}
    if args.occluded_data:
        sets["occluded"] = _load_records(args.occluded_data, args.faces, scheme)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    landmarkers = {mode: _landmarker(spec) for mode, spec in start_models.items()}
    init_rows = study_rows(getattr(main_model, "shape_fit", None) is not None, start_models)

    runs = len(init_rows) * len(sets)
    bar = tqdm(total=runs, desc="study", unit="run", file=sys.stderr, dynamic_ncols=True)
    truth = {name: np.stack([r.landmarks for r in records]).astype(np.float64) for name, records in sets.items()}
    outputs: dict[tuple[str, str], dict] = {}
    for name, records in sets.items():
        for _, mode in init_rows:
            outputs[(name, mode)] = predict_steps(landmarkers.get(mode, main), records, mode, args.seed)
            bar.update(1)
    bar.close()
    # The main model as it runs: its own start (a start model given for that mode does not replace it).
    main_own = {name: outputs[(name, own_mode)] if (name, own_mode) in outputs and own_mode not in landmarkers
                else predict_steps(main, records, own_mode, args.seed) for name, records in sets.items()}

    detected = {name: _face_nmes(main_own[name]["detected"], truth[name], scheme) for name in sets}
    rows = [{"name": DETECTED_ROW, "init_mode": None, "model_note": "main",
             **{name: {"start": _entry(detected[name]), "steps": [], "final": report.summarize(detected[name], "ip")}
                for name in sets},
             "paper_300w_full_nme_ip_percent": PAPER_300W_FULL_IP[DETECTED_ROW]}]
    per_face = {}
    for row_name, mode in init_rows:
        row = {"name": row_name, "init_mode": mode, "model": start_models.get(mode, args.model),
               "model_note": "trained for this start" if mode in landmarkers
               else "main" if mode == own_mode else "main, start swapped",
               "paper_300w_full_nme_ip_percent": PAPER_300W_FULL_IP.get(mode)}
        for name in sets:
            figures = stage_figures(outputs[(name, mode)], truth[name], scheme)
            row[name] = {"start": figures["start"], "steps": figures["steps"], "final": figures["final"]}
            per_face[(name, mode)] = figures["per_face_ip"]
        rows.append(row)

    clean = main_own["clean"]
    frequencies = attention_frequencies(clean["attention"], scheme.num_points)
    save_attention_plot(frequencies, scheme, out_dir / ATTENTION_PNG,
                        title=f"attention centres, {own_mode} start, {len(sets['clean'])} clean faces")
    attention = {"init_mode": own_mode, "frequencies": frequencies.tolist(),
                 "max_share": frequencies.max(-1).tolist(), "top": top_landmarks(frequencies, scheme)}
    if "occluded" in sets:
        occluded = main_own["occluded"]
        flags = np.stack([r.visibility > 0 if r.visibility is not None else np.ones(scheme.num_points, bool)
                          for r in sets["occluded"]])
        occluded_frequencies = attention_frequencies(occluded["attention"], scheme.num_points)
        attention["occluded"] = {"frequencies": occluded_frequencies.tolist(),
                                 "max_share": occluded_frequencies.max(-1).tolist(),
                                 "visible_centre_share": visible_centre_share(occluded["attention"], flags)}
    own_per_face = stage_figures(clean, truth["clean"], scheme)["per_face_ip"]
    pictures = _save_pictures(out_dir, main, sets["clean"], clean, own_per_face, detected["clean"]["ip"],
                              scheme, args.seed)

    study = {"data": args.data, "occluded_data": args.occluded_data, "model": args.model,
             "start_models": start_models, "scheme": scheme.name, "num_faces": len(sets["clean"]),
             "input_size": size, "margin": margin, "steps": own_per_face.shape[0] - 1, "seed": args.seed,
             "box_protocol": f"gt (tight box of the ground-truth landmarks, model margin {margin:g})",
             "normalizers": {"ip": "inter-pupil", "io": "inter-ocular, outer eye corners"},
             "fr_normalizer": "ip", "units": "fractions (x100 for %)", "sets": {k: len(v) for k, v in sets.items()},
             "rows": rows, "attention": attention, "pictures": pictures}
    markdown = format_markdown(study)
    (out_dir / STUDY_MD).write_text(markdown)
    with open(out_dir / STUDY_JSON, "w") as f:
        json.dump(_json_ready(study), f, indent=2)
        f.write("\n")
    return study, markdown


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _, markdown = run_study(args)
    except (DataError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(markdown, end="")
    print(f"wrote {args.out}/{{{STUDY_MD}, {STUDY_JSON}, {ATTENTION_PNG}, steps_*.png}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
