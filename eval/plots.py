"""Report pictures: the CED curve (matplotlib, Agg). Landmark overlays: `rar_keras.inference.overlay`."""

from __future__ import annotations

from typing import Mapping

import matplotlib
import numpy as np
from matplotlib import pyplot as plt

from eval.metrics import ced_curve

CED_STEP = 1e-3


def save_ced_plot(curves: Mapping[str, np.ndarray], threshold: float, path: str, title: str = "",
                  xlabel: str = "NME") -> None:
    """Writes a CED plot (fraction of faces vs NME, NME axis in %) with one named curve each.

    Args:
        curves: legend label -> per-face NMEs (fractions).
        threshold: right end of the NME axis (fraction).
        path: output PNG path.
        title: plot title.
        xlabel: x axis label; " (%)" is appended.
    """
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    try:
        for label, nmes in curves.items():
            xs, ys = ced_curve(nmes, threshold, CED_STEP)
            ax.plot(xs * 100.0, ys, label=label)
        ax.set_xlim(0.0, threshold * 100.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel(f"{xlabel} (%)")
        ax.set_ylabel("fraction of faces")
        ax.grid(True, alpha=0.3)
        if title:
            ax.set_title(title)
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
