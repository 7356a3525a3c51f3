"""Classifier evaluation: metrics at the saved thresholds, threshold curves, calibration, co-occurrence, misses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontwire.metrics import multilabel_indicator, topic_metrics
from frontwire.records import Record

GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


@dataclass
class TopicRun:
    labels: list[str]
    scores: np.ndarray  # [paragraphs, labels] probabilities
    predicted: list[list[str]]  # decoded at the model's saved thresholds (exclusive labels applied)
    thresholds: dict[str, float]
    seconds: float


def predict_topics(model, labels: Sequence[str], texts: Sequence[str], batch_size: int) -> TopicRun:
    """`model` is a predictor TopicModel or the TF-IDF baseline: both score and decode the same way."""
    started = time.perf_counter()
    scores = model.scores(list(texts), batch_size) if texts else np.zeros((0, len(labels)), dtype=np.float32)
    predicted = [model.decode(row) for row in scores]
    thresholds = {label: float(model.thresholds.get(label, 0.5)) for label in labels}
    return TopicRun(
        list(labels), np.asarray(scores, dtype=np.float64), predicted, thresholds, time.perf_counter() - started
    )


@dataclass
class TopicEvaluation:
    summary: dict[str, Any]
    y_true: np.ndarray
    tp: np.ndarray  # [paragraphs, labels], for the bootstrap
    fp: np.ndarray
    fn: np.ndarray
    curves: dict[str, dict[str, np.ndarray]]
    rows: list[dict[str, Any]]


def evaluate_topics(records: Sequence[Record], run: TopicRun, top: int, bins: int = 10) -> TopicEvaluation:
    labels = run.labels
    y_true = multilabel_indicator([r.labels for r in records], labels)
    y_pred = multilabel_indicator(run.predicted, labels)
    curves = threshold_curves(y_true, run.scores, labels)
    summary = {
        "metrics": topic_metrics(y_true, y_pred, labels) if len(records) else {},
        "thresholds": run.thresholds,
        # best threshold on *this* data: how far the saved (dev-tuned) thresholds are from it, not a new setting
        "threshold_analysis": {
            label: {
                "saved": run.thresholds[label],
                "oracle_threshold": float(GRID[int(np.argmax(c["f1"]))]),
                "oracle_f1": float(c["f1"].max()),
            }
            for label, c in curves.items()
        },
        "calibration": calibration(y_true, run.scores, labels, bins),
        "co_occurrence": co_occurrence(y_true, y_pred, labels),
    }
    tp, fp, fn = y_true & y_pred, (1 - y_true) & y_pred, y_true & (1 - y_pred)
    return TopicEvaluation(summary, y_true, tp, fp, fn, curves, worst_misses(records, run, y_true, y_pred, top))


def threshold_curves(y_true: np.ndarray, scores: np.ndarray, labels: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per label P/R/F1 at every threshold of GRID (each label on its own, before exclusive-label decoding)."""
    curves = {}
    for column, label in enumerate(labels):
        above = scores[:, column][:, None] >= GRID[None, :]
        positive = y_true[:, column][:, None] == 1
        tp = (above & positive).sum(0)
        predicted, actual = above.sum(0), positive.sum()
        precision = np.divide(tp, predicted, out=np.zeros(len(GRID)), where=predicted > 0)
        recall = tp / actual if actual else np.zeros(len(GRID))
        denominator = predicted + actual
        f1 = np.divide(2 * tp, denominator, out=np.zeros(len(GRID)), where=denominator > 0)
        curves[label] = {"threshold": GRID, "precision": precision, "recall": recall, "f1": f1}
    return curves


def calibration(y_true: np.ndarray, scores: np.ndarray, labels: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error per label over `bins` equal-width score bins, with the reliability table."""
    per_label: dict[str, Any] = {}
    for column, label in enumerate(labels):
        p, y = scores[:, column], y_true[:, column].astype(np.float64)
        which = np.minimum((p * bins).astype(int), bins - 1)
        count = np.bincount(which, minlength=bins)
        score_sum = np.bincount(which, weights=p, minlength=bins)
        positive_sum = np.bincount(which, weights=y, minlength=bins)
        # sum over bins of n_b/N * |accuracy_b - confidence_b| == sum |positives_b - scores_b| / N
        ece = float(np.abs(positive_sum - score_sum).sum() / len(p)) if len(p) else 0.0
        per_label[label] = {
            "ece": ece,
            "bins": [
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "count": int(count[b]),
                    "mean_score": float(score_sum[b] / count[b]) if count[b] else None,
                    "fraction_positive": float(positive_sum[b] / count[b]) if count[b] else None,
                }
                for b in range(bins)
            ],
        }
    eces = [v["ece"] for v in per_label.values()]
    return {"bins": bins, "per_label": per_label, "macro_ece": float(np.mean(eces)) if eces else 0.0}


def co_occurrence(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """matrix[i][j] = paragraphs with gold label i and predicted label j; `none` = no label at all."""
    gold = np.hstack([y_true, (y_true.sum(1) == 0)[:, None]]).astype(np.int64)
    pred = np.hstack([y_pred, (y_pred.sum(1) == 0)[:, None]]).astype(np.int64)
    return {"labels": [*labels, "none"], "matrix": (gold.T @ pred).tolist()}


def worst_misses(
    records: Sequence[Record], run: TopicRun, y_true: np.ndarray, y_pred: np.ndarray, top: int
) -> list[dict[str, Any]]:
    """Paragraphs with a wrong label, the most confidently wrong first.

    A row's confidence is the model's confidence in its worst wrong decision: the score of a wrongly
    predicted label, or 1 - score of a missed one."""
    wrong = y_true != y_pred
    confidence = np.where(wrong, np.where(y_pred == 1, run.scores, 1.0 - run.scores), -1.0)
    worst = confidence.max(1) if len(records) else np.zeros(0)
    order = [int(i) for i in np.argsort(-worst, kind="stable") if wrong[i].any()][:top]
    labels = run.labels
    return [
        {
            "id": records[i].id,
            "text": records[i].text,
            "errors": int(wrong[i].sum()),
            "confidence": round(float(worst[i]), 4),
            "gold": list(records[i].labels),
            "predicted": list(run.predicted[i]),
            "missed": [label for j, label in enumerate(labels) if y_true[i, j] and not y_pred[i, j]],
            "spurious": [label for j, label in enumerate(labels) if y_pred[i, j] and not y_true[i, j]],
            "scores": {label: round(float(run.scores[i, j]), 4) for j, label in enumerate(labels)},
        }
        for i in order
    ]
