"""Paragraph-level bootstrap confidence intervals, vectorised.

Every headline metric here is a function of per-paragraph true-positive / false-positive / false-negative
counts per class, so one resample is a weighted sum of those counts: with W[b, i] = how often paragraph i is
drawn in resample b, the counts of all resamples are one matrix product W @ counts. 1,000 resamples of 2,000
paragraphs take well under a second. A paired comparison reuses the same W for both models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95


@dataclass
class Counts:
    """Per-paragraph counts [paragraphs, classes]; `macro_columns` are the classes macro-F1 averages over."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    macro_columns: np.ndarray
    exact_match: bool = False  # also report the share of paragraphs with no error at all (topics)


def resample_weights(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """W [n_resamples, n]: draw counts of each paragraph in each resample (rows sum to n)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    flat = draws + (np.arange(n_resamples) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def headline(counts: Counts, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Micro P/R/F1 and macro F1 (and exact match) for each row of weights; zero division gives 0."""
    tp, fp, fn = (weights @ m.astype(np.float64) for m in (counts.tp, counts.fp, counts.fn))
    stp, sfp, sfn = tp.sum(1), fp.sum(1), fn.sum(1)
    per_class_f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    macro = per_class_f1[:, counts.macro_columns].mean(1) if counts.macro_columns.any() else np.zeros(len(tp))
    values = {
        "micro_precision": _ratio(stp, stp + sfp),
        "micro_recall": _ratio(stp, stp + sfn),
        "micro_f1": _ratio(2 * stp, 2 * stp + sfp + sfn),
        "macro_f1": macro,
    }
    if counts.exact_match:
        perfect = ((counts.fp + counts.fn).sum(1) == 0).astype(np.float64)
        values["exact_match"] = _ratio(weights @ perfect, weights.sum(1))
    return values


def intervals(counts: Counts, weights: np.ndarray) -> dict[str, dict[str, float]]:
    point = headline(counts, np.ones((1, counts.tp.shape[0])))
    resampled = headline(counts, weights)
    return {name: _interval(point[name][0], resampled[name]) for name in point}


def paired_difference(a: Counts, b: Counts, weights: np.ndarray) -> dict[str, dict[str, float]]:
    """B - A on the same resamples; `prob_b_better` is the share of resamples where B beats A."""
    ones = np.ones((1, a.tp.shape[0]))
    point_a, point_b = headline(a, ones), headline(b, ones)
    resampled_a, resampled_b = headline(a, weights), headline(b, weights)
    result = {}
    for name in point_a.keys() & point_b.keys():
        difference = resampled_b[name] - resampled_a[name]
        result[name] = {
            "a": float(point_a[name][0]),
            "b": float(point_b[name][0]),
            **_interval(point_b[name][0] - point_a[name][0], difference),
            "prob_b_better": float(np.mean(difference > 0)),
        }
    return dict(sorted(result.items()))


def _interval(value: float, samples: np.ndarray) -> dict[str, Any]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return {"value": float(value), "low": float(low), "high": float(high), "std": float(samples.std())}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0)
