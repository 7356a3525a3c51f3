"""Training plots (PNG via MLflow): per-label precision-recall curves, entity-type confusion."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: servers and CI have no display
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve


def pr_curves(y_true: np.ndarray, scores: np.ndarray, labels: Sequence[str], thresholds: dict[str, float]):
    columns = len(labels)
    figure, axes = plt.subplots(1, columns, figsize=(3.2 * columns, 3.2), squeeze=False)
    for column, label in enumerate(labels):
        axis = axes[0][column]
        if y_true[:, column].sum() > 0:
            precision, recall, cuts = precision_recall_curve(y_true[:, column], scores[:, column])
            axis.plot(recall, precision)
            cut = thresholds.get(label)
            if cut is not None and len(cuts):
                at = int(np.argmin(np.abs(cuts - cut)))
                axis.scatter([recall[at]], [precision[at]], color="red", zorder=3, label=f"t={cut:.2f}")
                axis.legend(loc="lower left", fontsize=7)
        axis.set_title(label)
        axis.set_xlabel("recall")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("precision")
    figure.tight_layout()
    return figure


def confusion_matrix_plot(matrix: np.ndarray, names: Sequence[str], title: str):
    figure, axis = plt.subplots(figsize=(1.1 * len(names) + 2, 1.1 * len(names) + 1.5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(int(value)), ha="center", va="center", fontsize=8)
    axis.set_title(title)
    figure.tight_layout()
    return figure
