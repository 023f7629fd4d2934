"""Pictures of the comparison study (`python -m eval.study`): attention frequencies and per-step shapes.

Matplotlib (Agg) only; every function writes one PNG and closes its figure.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib import pyplot as plt

from datasets.schemes import LandmarkScheme

# Named face regions as index ranges [start, stop) per scheme; other schemes fall back to their contours.
REGIONS = {
    "300w68": (("jaw", 0, 17), ("brows", 17, 27), ("nose", 27, 36), ("eyes", 36, 48), ("mouth", 48, 68)),
}
# Stage colours: S_d, S_0, then one per refinement step (cycled); ground truth is white.
DETECTED_COLOR = "#1f77b4"
START_COLOR = "#ff7f0e"
STEP_COLORS = ("#d62728", "#2ca02c", "#9467bd", "#e377c2", "#17becf", "#bcbd22", "#8c564b")
GT_COLOR = "white"


def regions(scheme: LandmarkScheme) -> tuple[tuple[str, int, int], ...]:
    """(name, start, stop) index ranges covering the scheme's landmarks, for axis labels."""
    if scheme.name in REGIONS:
        return REGIONS[scheme.name]
    runs = sorted({(min(run), max(run) + 1) for run in scheme.contours})
    return tuple((f"part {k + 1}", start, stop) for k, (start, stop) in enumerate(runs))


def region_of(scheme: LandmarkScheme, index: int) -> str:
    """The region name of landmark `index` ("" when no region covers it)."""
    for name, start, stop in regions(scheme):
        if start <= index < stop:
            return name
    return ""


def step_color(t: int) -> str:
    """Colour of S_t for t >= 1."""
    return STEP_COLORS[(t - 1) % len(STEP_COLORS)]


def _pyplot():
    matplotlib.use("Agg")

    return plt


def save_attention_plot(frequencies: np.ndarray, scheme: LandmarkScheme, path: os.PathLike | str,
                        title: str = "") -> None:
    """Grouped bar chart of attention-centre frequencies.

    Args:
        frequencies: (T, L) fraction of faces whose attention centre at step t+1 is landmark l.
        scheme: names the regions shaded along the x axis.
        path: output PNG.
        title: figure title.
    """
    plt = _pyplot()
    freq = np.asarray(frequencies, np.float64)
    steps, num = freq.shape
    fig, ax = plt.subplots(figsize=(max(8.0, num * 0.16), 4.2), dpi=120)
    try:
        width = 0.8 / steps
        xs = np.arange(num)
        top = max(float(freq.max()) if freq.size else 0.0, 1e-3) * 1.15
        for k, (name, start, stop) in enumerate(regions(scheme)):
            if k % 2 == 0:
                ax.axvspan(start - 0.5, stop - 0.5, color="0.92", zorder=0)
            ax.text((start + stop - 1) / 2.0, top * 0.97, name, ha="center", va="top", fontsize=9, color="0.25")
        for t in range(steps):
            ax.bar(xs - 0.4 + width * (t + 0.5), freq[t], width, color=step_color(t + 1),
                   label=f"step {t + 1}", zorder=2)
        ax.set_xlim(-0.7, num - 0.3)
        ax.set_ylim(0.0, top)
        ticks = sorted({0, num - 1, *(start for _, start, _ in regions(scheme))})
        ax.set_xticks(ticks)
        ax.set_xlabel("landmark index")
        ax.set_ylabel("fraction of faces (attention centre)")
        ax.grid(True, axis="y", alpha=0.3, zorder=1)
        if title:
            ax.set_title(title, fontsize=10)
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.88), fontsize="small")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _draw(ax, points, scheme: LandmarkScheme, color: str, size: float = 9.0, label: str | None = None) -> None:
    pts = np.asarray(points, np.float64)
    for run in scheme.contours:
        ax.plot(pts[list(run), 0], pts[list(run), 1], "-", color=color, linewidth=0.8, alpha=0.9)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, color=color, edgecolors="none", label=label, zorder=3)


def save_steps_picture(crop: np.ndarray, gt: np.ndarray, detected: np.ndarray, steps: np.ndarray,
                       attention: Sequence[int], scheme: LandmarkScheme, path: os.PathLike | str,
                       nmes: Sequence[float], title: str = "") -> None:
    """One face's refinement, stage by stage, on its model crop (all coordinates in crop pixels).

    Panels: S_d; S_0; S_1 .. S_T (each with the attention centre of that step
    ringed on the shape it was chosen from, S_{t-1}); then all stages together.
    Ground truth in white everywhere.

    Args:
        crop: (S, S, 3) uint8 or 0..255 float RGB model crop.
        gt: (L, 2) ground truth.
        detected: (L, 2) S_d.
        steps: (T+1, L, 2) S_0 .. S_T.
        attention: (T,) attention-centre landmark index per step.
        scheme: for contours.
        path: output PNG.
        nmes: NME ip fractions of S_d, S_0 .. S_T (T+2 numbers) for the panel titles.
        title: figure title.
    """
    plt = _pyplot()
    image = np.clip(np.asarray(crop, np.float64), 0, 255).astype(np.uint8)
    num_steps = steps.shape[0] - 1
    stages = [("S_d (conv8 argmax)", detected, DETECTED_COLOR), ("S_0 (start)", steps[0], START_COLOR)]
    stages += [(f"S_{t}", steps[t], step_color(t)) for t in range(1, num_steps + 1)]
    panels = len(stages) + 1
    fig, axes = plt.subplots(1, panels, figsize=(2.9 * panels, 3.6), dpi=110)
    try:
        for k, (ax, (name, shape, color)) in enumerate(zip(axes, stages)):
            ax.imshow(image)
            _draw(ax, gt, scheme, GT_COLOR, 6.0)
            _draw(ax, shape, scheme, color, 9.0)
            if k >= 2:                       # refinement step t = k - 1: centre chosen on S_{t-1}
                t = k - 1
                c = int(attention[t - 1])
                previous = steps[t - 1]
                ax.scatter([previous[c, 0]], [previous[c, 1]], s=160, facecolors="none", edgecolors="yellow",
                           linewidths=2.0, zorder=4)
                name += f", centre {c}"
            ax.set_title(f"{name}\nNME ip {nmes[k] * 100:.2f} %", fontsize=8)
            ax.axis("off")
        ax = axes[-1]
        ax.imshow(image)
        _draw(ax, gt, scheme, GT_COLOR, 6.0, "ground truth")
        for name, shape, color in stages:
            _draw(ax, shape, scheme, color, 5.0, name.split(" ")[0])
        for t in range(1, num_steps + 1):
            c = int(attention[t - 1])
            ax.scatter([steps[t - 1][c, 0]], [steps[t - 1][c, 1]], s=110, facecolors="none",
                       edgecolors=step_color(t), linewidths=1.6, zorder=4)
        ax.set_title("all stages (rings: attention centres)", fontsize=8)
        legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=6, markerscale=1.5,
                           facecolor="0.55", framealpha=1.0)   # grey: the white ground truth stays visible
        for text in legend.get_texts():
            text.set_color("white")
        ax.axis("off")
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.92 if title else 1.0))
        fig.savefig(path, facecolor="white", bbox_inches="tight")
    finally:
        plt.close(fig)
