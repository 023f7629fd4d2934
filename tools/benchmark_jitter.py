"""`python -m tools.benchmark_jitter`: landmark jitter on clips with a known motion, video vs image mode.

Each clip is one still test face under a smooth affine motion (a slow sway, a tilt and a zoom,
`--frames` frames at 30 fps) with fresh pixel noise every frame, so the true track is known and
any frame-to-frame shake is the landmarker's. Prints, for video mode (faces followed from frame
to frame: optical flow, turned crops, smoothing) and image mode (the detector on every frame):

- NME: mean over frames and clips, inter-pupil, %;
- jitter: per landmark, the RMS over frames of its error's deviation from its mean error (in % of
  the inter-pupil distance), averaged over landmarks and clips;
- cost: milliseconds per frame (detector, crops, model; one thread of LiteRT);
- missed: frames where the face was not found.

`--ablation` adds video mode without optical flow and without smoothing.

    python -m tools.benchmark_jitter --data $RAR_KERAS_DATA/300w/helen/testset --faces 50
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import cv2
import numpy as np
from tqdm import tqdm

from datasets.errors import DataError
from datasets.loaders import load_records
from datasets.record import landmark_box
from datasets.schemes import get_scheme
from eval.metrics import normalizer
from rar_keras.detectors.base import box_iou
from rar_keras.inference.face_landmarker import FaceLandmarker, LandmarkerOptions

FPS = 30.0
SWAY = 0.08            # of the face size, peak translation
TILT_DEGREES = 6.0
ZOOM = 0.05


@dataclasses.dataclass
class Clip:
    """Frames (RGB uint8) of one face in motion, with the true landmarks of every frame."""

    frames: list
    landmarks: np.ndarray      # (F, L, 2)


def motion(t: int, frames: int, centre, size: float) -> np.ndarray:
    """The 2x3 affine of frame t: a smooth sway, tilt and zoom about the face centre."""
    phase = 2 * math.pi * t / frames
    angle = TILT_DEGREES * math.sin(phase)
    scale = 1.0 + ZOOM * math.sin(2 * phase)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += SWAY * size * np.array([math.sin(phase), 0.5 * math.sin(2 * phase)])
    return matrix


def make_clip(record, frames: int, noise: float, rng: np.random.Generator) -> Clip:
    """The clip of one annotated face (see the module notes)."""
    box = landmark_box(record.landmarks)
    centre, size = (box[:2] + box[2:]) / 2, float(max(box[2:] - box[:2]))
    height, width = record.image.shape[:2]
    images, points = [], []
    for t in range(frames):
        matrix = motion(t, frames, centre, size)
        moved = cv2.warpAffine(record.image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        noisy = np.clip(moved + rng.normal(0, noise, moved.shape), 0, 255).astype(np.uint8)
        images.append(noisy)
        points.append(record.landmarks @ matrix[:, :2].T + matrix[:, 2])
    return Clip(images, np.stack(points).astype(np.float32))


def jitter(predicted: np.ndarray, truth: np.ndarray, norm: float) -> float:
    """Per landmark, the RMS over frames of (error - mean error), averaged over landmarks; in % of `norm`."""
    error = predicted - truth                                     # (F, L, 2)
    deviation = error - error.mean(0, keepdims=True)
    return 100.0 * float(np.sqrt((deviation ** 2).sum(-1).mean(0)).mean()) / norm


def run_clip(landmarker, clip: Clip, video_mode: bool) -> tuple[np.ndarray, float, int]:
    """(predictions (F, L, 2) NaN where missed, ms per frame, missed frames) on one clip."""
    predictions = np.full(clip.landmarks.shape, np.nan, np.float32)
    if video_mode:
        landmarker.reset()
    started = time.perf_counter()
    for t, frame in enumerate(clip.frames):
        result = landmarker.detect_for_video(frame, 1000.0 * t / FPS) if video_mode else landmarker.detect(frame)
        truth_box = landmark_box(clip.landmarks[t])
        best, best_overlap = None, 0.1
        for face in result.faces:
            overlap = float(box_iou(truth_box, landmark_box(face.landmarks))[0])
            if overlap > best_overlap:
                best, best_overlap = face, overlap
        if best is not None:
            predictions[t] = best.landmarks
    elapsed = 1e3 * (time.perf_counter() - started) / len(clip.frames)
    return predictions, elapsed, int(np.isnan(predictions[:, 0, 0]).sum())


VARIANTS = {
    "video": {"running_mode": "video"},
    "image": {"running_mode": "image"},
}
ABLATIONS = {
    "video, no flow": {"running_mode": "video", "optical_flow": False},
    "video, no smoothing": {"running_mode": "video", "smoothing": None},
}


def benchmark(records, model: str, frames: int, noise: float, seed: int = 0, progress=lambda x, **_: x,
              variants: dict = VARIANTS) -> dict:
    """{variant: {...}} (default "video" and "image") with the mean NME, jitter, ms per frame and
    missed frames; `variants` maps names to `LandmarkerOptions` fields."""
    landmarkers = {name: FaceLandmarker.create(LandmarkerOptions(model=model, **options))
                   for name, options in variants.items()}
    scheme = get_scheme(landmarkers["video"].scheme)
    rng = np.random.default_rng(seed)
    totals = {mode: {"nme": [], "jitter": [], "ms": [], "missed": 0, "frames": 0} for mode in landmarkers}
    for record in progress(records, desc="clips", unit="clip"):
        clip = make_clip(record, frames, noise, rng)
        norms = normalizer(clip.landmarks, scheme, "ip")
        for mode, landmarker in landmarkers.items():
            predicted, ms, missed = run_clip(landmarker, clip, landmarker.options.running_mode == "video")
            found = ~np.isnan(predicted[:, 0, 0])
            total = totals[mode]
            total["missed"] += missed
            total["frames"] += frames
            total["ms"].append(ms)
            if found.sum() >= 2:
                errors = np.linalg.norm(predicted[found] - clip.landmarks[found], axis=-1).mean(-1) / norms[found]
                total["nme"].extend(100 * errors)
                total["jitter"].append(jitter(predicted[found], clip.landmarks[found], float(norms.mean())))
    return {mode: {"nme_ip": float(np.mean(t["nme"])), "jitter_ip": float(np.mean(t["jitter"])),
                   "ms_per_frame": float(np.median(t["ms"])), "missed_frames": t["missed"], "frames": t["frames"]}
            for mode, t in totals.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark_jitter", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", required=True, help="still test faces (any dataset the readers know)")
    parser.add_argument("--model", default="w300_mobile")
    parser.add_argument("--faces", type=int, default=50, help="clips (one per face)")
    parser.add_argument("--frames", type=int, default=30, help="frames per clip")
    parser.add_argument("--noise", type=float, default=6.0, help="pixel noise (standard deviation, 0-255)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablation", action="store_true",
                        help="also video mode without optical flow and without smoothing")
    args = parser.parse_args(argv)

    try:
        records = load_records(args.data)[:args.faces]
        if not records:
            raise DataError(f"--data {args.data}: no faces")
        results = benchmark(records, args.model, args.frames, args.noise, args.seed,
                            progress=lambda items, **kw: tqdm(items, file=sys.stderr, **kw),
                            variants={**VARIANTS, **(ABLATIONS if args.ablation else {})})
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(records)} clips x {args.frames} frames, noise {args.noise}, model {args.model}")
    print(f"{'mode':20s} {'NME ip %':>9s} {'jitter % ip':>12s} {'ms/frame':>9s} {'missed':>7s}")
    for mode, row in results.items():
        print(f"{mode:20s} {row['nme_ip']:9.2f} {row['jitter_ip']:12.3f} {row['ms_per_frame']:9.2f} "
              f"{row['missed_frames']:4d}/{row['frames']}")
    video, image = results["video"], results["image"]
    print(f"video / image: jitter {video['jitter_ip'] / image['jitter_ip']:.2f}x, "
          f"NME {video['nme_ip'] - image['nme_ip']:+.2f} points, cost {video['ms_per_frame'] / image['ms_per_frame']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
