"""`python -m eval.study`: the RAR paper's comparison study of start shapes, on one test set.

Rows: the conv8 argmax shape S_d alone, and the attentive refinement started
from each start-shape mode of `RobustShapeInit` (mean shape, a seeded random
bank shape, S_d directly, the least-squares bank fit, the robust RANSAC bank
fit). For each: NME (inter-pupil and outer-eye-corner normalisers) of the start
shape S_0 and after every refinement step S_1..S_T, failure rate and AUC at
8 % and 10 % of the final shape (inter-pupil, as the paper). Also: how often
each landmark is the attention centre at each step (robust start), and
pictures of a few faces refined step by step.

Protocol (docs/EVALUATION.md): the face box is the tight box of the
ground-truth landmarks, cropped with the model's own margin. Predictions are
mapped from crop pixels back to image pixels (`CropLandmarker`, the product's
crop path) and compared with the original annotations there.

Example:
    python -m eval.study --data $RAR_KERAS_DATA/300w/helen/testset \
        --model runs/w300_mobile/model.keras --out runs/study --faces 100

Writes DIR/study.md (also printed), DIR/study.json, DIR/attention.png and
DIR/steps_<k>.png. User errors print one line to stderr and exit with code 2.
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

from datasets.errors import DataError

EXIT_USER_ERROR = 2
BATCH_SIZE = 32
NUM_TOP = 5                 # most frequent attention centres listed per step
NUM_BEST_PICTURES = 2       # faces with the largest S_0 -> S_T improvement (robust start)
NUM_RANDOM_PICTURES = 2     # plus this many random faces
ATTENTION_MODE = "robust"
STUDY_MD, STUDY_JSON, ATTENTION_PNG = "study.md", "study.json", "attention.png"
DETECTED_ROW = "conv8 argmax alone"
# (row name, RobustShapeInit mode), in the order of the table.
INIT_ROWS = (("mean shape", "mean"), ("random bank shape", "random"), ("S_d directly", "detected"),
             ("least squares bank fit", "least_squares"), ("robust (RANSAC bank)", "robust"),
             ("robust, S_d inliers kept", "robust_inliers"))
# The paper's ablation (Xiao et al. 2016), NME ip % on 300-W full: a different test set, for orientation.
PAPER_300W_FULL_IP = {DETECTED_ROW: 6.24, "mean": 5.26, "random": 5.22, "detected": 6.66, "robust": 4.94}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="test set: a dataset file, or a folder of image + .pts pairs")
    parser.add_argument("--model", required=True, help="a preset name or a .keras file (a RARLandmarker)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random bank shapes and random pictures")
    parser.add_argument("--faces", type=int, help="use only the first N faces (loader order)")
    parser.add_argument("--split", choices=("train", "test"), help="split of a .mat file (default test)")
    parser.add_argument("--image-root", help="folder that image paths in the annotation file are relative to")
    return parser


# === Data and prediction ===
def _load_records(args, scheme):
    from datasets.loaders import load_records
    from datasets.record import landmark_box

    split = args.split or ("test" if args.data.lower().endswith(".mat") else None)
    records = load_records(args.data, split=split, image_root=args.image_root)
    if not records:
        raise DataError(f"--data {args.data}: no annotated faces found")
    if args.faces is not None:
        records = records[:args.faces]
    wrong = [r for r in records if r.landmarks.shape[0] != scheme.num_points]
    if wrong:
        raise DataError(f"--data {args.data}: {wrong[0].path} has {wrong[0].landmarks.shape[0]} landmarks; "
                        f"the model's scheme {scheme.name} has {scheme.num_points}")
    # Ground-truth box protocol: the tight box of the annotated landmarks.
    return [dataclasses.replace(r, box=landmark_box(r.landmarks)) for r in records]


def _predict_all(landmarker, records, modes: Sequence[str], seed: int) -> dict[str, dict]:
    """Every stage in image pixels (and the attention centres) for every init mode."""
    import keras
    from tqdm import tqdm

    images = [r.image for r in records]
    boxes = np.stack([r.box for r in records])
    results = {}
    bar = tqdm(total=len(modes) * len(records), desc="predicting", unit="face", file=sys.stderr,
               dynamic_ncols=True)
    for mode in modes:
        keras.utils.set_random_seed(seed)   # the "random" start draws from TF's global generator
        parts: dict[str, list] = {}
        for start in range(0, len(records), BATCH_SIZE):
            chunk = slice(start, start + BATCH_SIZE)
            for key, value in landmarker.predict_steps(images[chunk], boxes[chunk], init_mode=mode).items():
                parts.setdefault(key, []).append(value)
            bar.set_postfix_str(mode)
            bar.update(len(images[chunk]))
        results[mode] = {key: np.concatenate(value) for key, value in parts.items()}
    bar.close()
    return results


# === Metrics ===
def _face_nmes(pred, gt_image, scheme) -> dict[str, np.ndarray]:
    from eval.metrics import nme, normalizer

    return {kind: nme(pred, gt_image, normalizer(gt_image, scheme, kind)) for kind in ("ip", "io")}


def _final_figures(nmes: dict[str, np.ndarray]) -> dict:
    from eval import report

    return report.summarize(nmes, "ip")


def _stage_entry(label: str, nmes: dict[str, np.ndarray]) -> dict:
    from eval.report import mean_finite

    return {"stage": label, "nme_ip": mean_finite(nmes["ip"]), "nme_io": mean_finite(nmes["io"])}


def study_rows(predictions: dict[str, dict], gt_image, scheme) -> tuple[list[dict], dict]:
    """The table rows (fractions) and per-face NME ip of every stage: {mode: (T+1, N)}, DETECTED_ROW: (N,)."""
    detected = _face_nmes(predictions[ATTENTION_MODE]["detected"], gt_image, scheme)
    rows = [{"name": DETECTED_ROW, "init_mode": None, "start": _stage_entry("S_d", detected), "steps": [],
             "final": _final_figures(detected), "paper_300w_full_nme_ip_percent": PAPER_300W_FULL_IP[DETECTED_ROW]}]
    per_face = {DETECTED_ROW: detected["ip"]}
    for name, mode in INIT_ROWS:
        outputs = predictions[mode]
        num_steps = sum(key.startswith("step_") for key in outputs)
        stages = [_face_nmes(outputs[f"step_{t}"], gt_image, scheme) for t in range(num_steps)]
        rows.append({"name": name, "init_mode": mode, "start": _stage_entry("S_0", stages[0]),
                     "steps": [{**_stage_entry(f"S_{t}", s), "step": t} for t, s in enumerate(stages)],
                     "final": _final_figures(stages[-1]),
                     "paper_300w_full_nme_ip_percent": PAPER_300W_FULL_IP.get(mode)})
        per_face[mode] = np.stack([s["ip"] for s in stages])
    return rows, per_face


def attention_frequencies(attention: np.ndarray, num_points: int) -> np.ndarray:
    """(N, T) attention-centre indices -> (T, L) fraction of faces choosing each landmark at each step."""
    attention = np.asarray(attention, np.int64)
    if attention.size == 0:
        return np.zeros((attention.shape[1] if attention.ndim == 2 else 0, num_points))
    return np.stack([np.bincount(attention[:, t], minlength=num_points)[:num_points] / attention.shape[0]
                     for t in range(attention.shape[1])])


def top_landmarks(frequencies: np.ndarray, scheme, count: int = NUM_TOP) -> list[list[dict]]:
    """Per step, the `count` most frequent attention centres: index, region, frequency."""
    from eval.study_plots import region_of

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


def format_markdown(study: dict) -> str:
    """study.md: the table, the attention summary and the pictures."""
    num_steps = study["steps"]
    lines = [f"# RAR comparison study: {study['num_faces']} faces of {study['data']}", "",
             f"Model `{study['model']}` ({study['scheme']}, {study['input_size']} px crops, T = {num_steps} "
             f"refinement steps). Box: {study['box_protocol']}. NME in {study['nme_space']}; cells are "
             "NME ip / io in % (ip: inter-pupil, io: outer eye corners); failure rate and AUC on the final "
             f"shape, NME ip, in %. Random bank shapes seeded with {study['seed']}.", ""]
    header = ["row", "S_0"] + [f"S_{t}" for t in range(1, num_steps + 1)] + ["FR@8", "FR@10", "AUC@8", "AUC@10",
                                                                            "paper ip (300-W full)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in study["rows"]:
        cells = [f"{_pct(row['start']['nme_ip'])} / {_pct(row['start']['nme_io'])}"]
        if row["steps"]:
            cells += [f"{_pct(s['nme_ip'])} / {_pct(s['nme_io'])}" for s in row["steps"][1:]]
        else:
            cells += ["—"] * num_steps
        final = row["final"]
        cells += [_pct(final[k]) for k in ("fr_8", "fr_10", "auc_8", "auc_10")]
        paper = row["paper_300w_full_nme_ip_percent"]
        cells.append("—" if paper is None else f"{paper:.2f}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += ["", "The S_0 column of the conv8 row is S_d itself (no refinement). The paper column is the "
              "ablation of Xiao et al. (ECCV 2016) on 300-W full, NME ip: another test set and model, for "
              "orientation only.", "",
              f"## Attention centres ({study['attention']['init_mode']} start)", "",
              f"Frequency of each landmark as the attention centre per step: `{ATTENTION_PNG}`. Top {NUM_TOP}:", ""]
    for t, top in enumerate(study["attention"]["top"], start=1):
        listed = ", ".join(f"{e['index']} ({e['region']}, {e['frequency'] * 100:.1f} %)" for e in top)
        lines.append(f"- step {t}: {listed}")
    lines += ["", "## Pictures (robust start)", ""]
    for pic in study["pictures"]:
        lines.append(f"- `{pic['file']}`: {pic['path']} ({pic['why']}; NME ip S_0 {_pct(pic['nme_ip_start'])} % "
                     f"-> S_T {_pct(pic['nme_ip_final'])} %)")
    return "\n".join(lines) + "\n"


def _json_ready(value):
    """Nested dicts/lists with non-finite floats as null (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# === Main ===
def run_study(args) -> tuple[dict, str]:
    """Runs the study and writes its files; returns (study dict, markdown)."""
    if not os.path.exists(args.data):
        raise DataError(f"--data {args.data}: no such file or folder")
    if args.faces is not None and args.faces <= 0:
        raise DataError(f"--faces must be a positive number of faces, got {args.faces}")
    from datasets.geometry import apply_affine, invert_affine
    from eval.study_plots import save_attention_plot, save_steps_picture
    from rar_keras.inference.crop_landmarker import CropLandmarker
    from rar_keras.inference.keras_model import KerasCropModel, load_model

    landmarker = CropLandmarker(KerasCropModel(load_model(args.model, "--model"), batch_size=BATCH_SIZE),
                                batch_size=BATCH_SIZE)
    scheme, size, margin = landmarker.scheme, landmarker.input_size, landmarker.margin
    records = _load_records(args, scheme)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    gt_image = np.stack([r.landmarks for r in records]).astype(np.float64)
    modes = [mode for _, mode in INIT_ROWS]
    predictions = _predict_all(landmarker, records, modes, args.seed)
    rows, per_face = study_rows(predictions, gt_image, scheme)

    robust = predictions[ATTENTION_MODE]
    frequencies = attention_frequencies(robust["attention"], scheme.num_points)
    save_attention_plot(frequencies, scheme, out_dir / ATTENTION_PNG,
                        title=f"attention centres, {ATTENTION_MODE} start, {len(records)} faces")
    num_steps = per_face[ATTENTION_MODE].shape[0] - 1
    pictures = []
    for k, (i, why) in enumerate(pick_faces(per_face[ATTENTION_MODE][0] - per_face[ATTENTION_MODE][-1],
                                            args.seed)):
        name = f"steps_{k}.png"
        crops, inverses = landmarker.crops([records[i].image], records[i].box[None])
        to_crop = invert_affine(inverses[0])
        steps = np.stack([apply_affine(robust[f"step_{t}"][i], to_crop) for t in range(num_steps + 1)])
        nmes = [per_face[DETECTED_ROW][i], *per_face[ATTENTION_MODE][:, i]]
        save_steps_picture(crops[0], apply_affine(records[i].landmarks, to_crop),
                           apply_affine(robust["detected"][i], to_crop), steps, robust["attention"][i], scheme,
                           out_dir / name, nmes, title=f"{pathlib.Path(records[i].path).name} ({why})")
        pictures.append({"file": name, "path": records[i].path, "why": why,
                         "nme_ip_start": float(per_face[ATTENTION_MODE][0, i]),
                         "nme_ip_final": float(per_face[ATTENTION_MODE][-1, i])})

    study = {"data": args.data, "model": args.model, "scheme": scheme.name, "num_faces": len(records),
             "input_size": size, "margin": margin, "steps": num_steps, "seed": args.seed,
             "box_protocol": f"gt (tight box of the ground-truth landmarks, model margin {margin:g})",
             "nme_space": "image pixels (crop predictions mapped back to the image)",
             "normalizers": {"ip": "inter-pupil", "io": "inter-ocular, outer eye corners"},
             "fr_normalizer": "ip", "units": "fractions (x100 for %)", "rows": rows,
             "attention": {"init_mode": ATTENTION_MODE, "frequencies": frequencies.tolist(),
                           "top": top_landmarks(frequencies, scheme)},
             "pictures": pictures}
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
