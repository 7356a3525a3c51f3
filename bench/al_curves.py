"""Learning curves for bench/active_learning.py: one seed x strategy trajectory, summaries and the plot."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from frontwire.labeling.informativeness import topic_uncertainty

log = logging.getLogger("active_learning")


class Trajectory:
    """One seed × strategy: labeled/unlabeled state and learning curve, advanced one round at a time."""

    def __init__(self, pool: np.ndarray, strategy: str, seed: int, start: int, step: int, rounds: int | None) -> None:
        self.strategy, self.seed, self.step, self.rounds = strategy, seed, step, rounds
        self.rng = np.random.default_rng(seed)
        order = self.rng.permutation(pool)
        self.labeled, self.unlabeled = list(order[:start]), list(order[start:])
        self.curve: list[dict] = []
        self.done = False

    def advance(self, fit_round, y: np.ndarray, labels: list[str]) -> dict:
        """Fit on the labeled set, record the round, then buy the next `step` paragraphs (or finish)."""
        train = np.asarray(self.labeled)
        unlabeled = np.asarray(self.unlabeled, dtype=np.int64)
        tag = f"s{self.seed}-{self.strategy}-n{len(self.labeled)}"
        row, scores_pool, thresholds = fit_round(train, unlabeled, tag)
        row = {"labeled": len(self.labeled), **row,
               "positives": {label: int(y[train][:, i].sum()) for i, label in enumerate(labels)}}
        self.curve.append(row)
        log.info("%s seed=%d labeled=%d dev_macro=%.4f dev_micro=%.4f test_macro=%.4f", self.strategy, self.seed,
                 len(self.labeled), row["dev_macro_f1"], row["dev_micro_f1"], row["test_macro_f1"])
        if not self.unlabeled or (self.rounds is not None and len(self.curve) > self.rounds):
            self.done = True
            return row
        take = min(self.step, len(self.unlabeled))
        if self.strategy == "random":
            picked = set(self.rng.choice(len(self.unlabeled), size=take, replace=False).tolist())
        else:
            value = topic_uncertainty(scores_pool, thresholds)
            # most uncertain first; random tie-break so constant-score labels do not pick in pool order
            picked = set(np.lexsort((self.rng.random(len(self.unlabeled)), -value))[:take].tolist())
        self.labeled += [self.unlabeled[i] for i in sorted(picked)]
        self.unlabeled = [u for i, u in enumerate(self.unlabeled) if i not in picked]
        return row


def summarise(runs: dict[str, list[list[dict[str, float]]]]) -> dict[str, list[dict[str, float]]]:
    summary = {}
    for strategy, curves in runs.items():
        rows = []
        for step in range(min((len(c) for c in curves), default=0)):
            row: dict[str, float] = {"labeled": curves[0][step]["labeled"]}
            for metric in ("dev_macro_f1", "test_macro_f1", "dev_micro_f1", "test_micro_f1"):
                values = np.array([c[step][metric] for c in curves])
                row[f"{metric}_mean"] = round(float(values.mean()), 4)
                row[f"{metric}_sd"] = round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)
            rows.append(row)
        summary[strategy] = rows
    return summary


def paired_gain(runs: dict[str, list[list[dict[str, float]]]], metric: str) -> list[dict[str, float]]:
    """Uncertainty − random per round, paired by seed (same start set)."""
    out = []
    for step in range(min(len(c) for curves in runs.values() for c in curves)):
        diffs = np.array([u[step][metric] - r[step][metric]
                          for u, r in zip(runs["uncertainty"], runs["random"], strict=True)])
        out.append({"labeled": runs["random"][0][step]["labeled"], "mean": round(float(diffs.mean()), 4),
                    "sd": round(float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, 4),
                    "seeds_better": int((diffs > 0).sum())})
    return out


def plot(summary: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, metric in zip(axes, ("dev_macro_f1", "test_macro_f1"), strict=True):
        for strategy, style in (("uncertainty", "-o"), ("random", "--s")):
            rows = summary[strategy]
            x = [r["labeled"] for r in rows]
            mean = np.array([r[f"{metric}_mean"] for r in rows])
            sd = np.array([r[f"{metric}_sd"] for r in rows])
            ax.plot(x, mean, style, label=f"{strategy} sampling", markersize=4)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        ax.set_xlabel("labeled paragraphs")
        ax.set_title(metric.replace("_", " ") + (" (thresholds tuned on dev)" if metric.startswith("test") else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("macro-F1 (mean ± sd over seeds)")
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
