"""Evaluation PNGs. PR curves and confusion matrices are training's own plots, so both stages draw alike."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.train.plots import confusion_matrix_plot, plt, pr_curves


def save(figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)  # figures otherwise pile up in pyplot's registry for the life of the process
    return path.name


def topic_plots(
    evaluation, labels: Sequence[str], scores: np.ndarray, thresholds: dict[str, float], folder: Path, prefix: str
) -> dict[str, str]:
    summary = evaluation.summary
    co = summary["co_occurrence"]
    return {
        "pr_curves": save(pr_curves(evaluation.y_true, scores, labels, thresholds), folder / f"{prefix}pr_curves.png"),
        "threshold_curves": save(
            threshold_plot(evaluation.curves, thresholds), folder / f"{prefix}threshold_curves.png"
        ),
        "co_occurrence": save(
            confusion_matrix_plot(np.array(co["matrix"]), co["labels"], "paragraphs: gold label × predicted label"),
            folder / f"{prefix}co_occurrence.png",
        ),
        "reliability": save(reliability_plot(summary["calibration"]), folder / f"{prefix}reliability.png"),
    }


def entity_plots(evaluation, folder: Path, prefix: str) -> dict[str, str]:
    matrix, names = evaluation.confusion
    figure = confusion_matrix_plot(matrix, names, "entity types (same word boundaries); none = missed/spurious")
    return {"entity_confusion": save(figure, folder / f"{prefix}entity_confusion.png")}


def threshold_plot(curves: dict[str, dict[str, np.ndarray]], thresholds: dict[str, float]):
    figure, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3.2), squeeze=False)
    for axis, (label, curve) in zip(axes[0], curves.items(), strict=True):
        for key, style in (("f1", "-"), ("precision", "--"), ("recall", ":")):
            axis.plot(curve["threshold"], curve[key], style, label=key)
        axis.axvline(thresholds.get(label, 0.5), color="red", linewidth=0.8, label="saved")
        axis.set_title(label)
        axis.set_xlabel("threshold")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
    axes[0][0].legend(loc="lower left", fontsize=7)
    figure.tight_layout()
    return figure


def reliability_plot(calibration: dict[str, Any]):
    per_label = calibration["per_label"]
    figure, axes = plt.subplots(1, len(per_label), figsize=(3.2 * len(per_label), 3.2), squeeze=False)
    for axis, (label, table) in zip(axes[0], per_label.items(), strict=True):
        filled = [b for b in table["bins"] if b["count"]]
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        axis.plot([b["mean_score"] for b in filled], [b["fraction_positive"] for b in filled], "o-")
        axis.set_title(f"{label} (ECE {table['ece']:.3f})")
        axis.set_xlabel("mean score")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("fraction positive")
    figure.tight_layout()
    return figure
