"""Metrics shared by training-time evaluation and `frontwire evaluate`.

Multi-label topic metrics come from scikit-learn; entity metrics from seqeval (strict IOB2), computed on
character spans projected onto one common word tokenization, so gold and predicted spans are scored the
same way whatever tokenizer a model used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from seqeval.metrics import classification_report as seqeval_report
from seqeval.scheme import IOB2
from sklearn.metrics import precision_recall_fscore_support

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def multilabel_indicator(label_lists: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(label_lists), len(labels)), dtype=np.int64)
    for row, chosen in enumerate(label_lists):
        for label in chosen:
            if label in index:
                matrix[row, index[label]] = 1
    return matrix


def topic_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-label P/R/F1/support plus micro, macro and samples averages and the exact-match ratio."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, labels=range(len(labels)), zero_division=0
    )
    result: dict[str, Any] = {
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
    }
    for average in ("micro", "macro", "samples"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        result[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    result["exact_match"] = float(np.mean(np.all(y_true == y_pred, axis=1))) if len(y_true) else 0.0
    return result


def tune_thresholds(
    y_true: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    low: float = 0.05,
    high: float = 0.95,
    default: float = 0.5,
) -> dict[str, float]:
    """Per-label threshold maximizing F1 on held-out data; ties go to the threshold nearest `default`.

    Vectorised over the whole grid (it runs every epoch and for every blend weight during training).
    """
    grid = np.round(np.arange(low, high + 1e-9, 0.01), 2)
    thresholds: dict[str, float] = {}
    for column, label in enumerate(labels):
        truth = y_true[:, column].astype(bool)
        if not truth.any():
            thresholds[label] = default
            continue
        predicted = scores[:, column][:, None] >= grid[None, :]
        tp = (predicted & truth[:, None]).sum(0)
        fp = (predicted & ~truth[:, None]).sum(0)
        fn = (~predicted & truth[:, None]).sum(0)
        f1 = np.round(np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(grid)), where=(2 * tp + fp + fn) > 0), 6)
        best = max(range(len(grid)), key=lambda i: (f1[i], -abs(grid[i] - default)))
        thresholds[label] = float(grid[best])
    return thresholds


WordSplitter = Callable[[str], list[tuple[int, int]]]


def regex_words(text: str) -> list[tuple[int, int]]:
    """Words and single punctuation marks: the units paragraph entities are scored on."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def spans_to_word_tags(
    text: str, spans: Sequence[tuple[int, int, str]], words: WordSplitter = regex_words
) -> list[str]:
    """IOB2 tags over `words(text)`: a span tags every word it overlaps, its first one B-; a word already
    tagged by an earlier span keeps that tag."""
    units = words(text)
    tags = ["O"] * len(units)
    for start, end, label in sorted(spans):
        first = True
        for i, (w_start, w_end) in enumerate(units):
            if w_end <= start or w_start >= end or tags[i] != "O":
                continue
            tags[i] = f"{'B' if first else 'I'}-{label}"
            first = False
    return tags


def entity_metrics(
    texts: Sequence[str],
    gold: Sequence[Sequence[tuple[int, int, str]]],
    predicted: Sequence[Sequence[tuple[int, int, str]]],
    words: WordSplitter = regex_words,
) -> dict[str, Any]:
    """seqeval strict entity-level P/R/F1 per type and micro/macro overall, over `words` of each text (CoNLL
    data passes its own tokens, as conlleval scores it)."""
    y_true = [spans_to_word_tags(t, g, words) for t, g in zip(texts, gold, strict=True)]
    y_pred = [spans_to_word_tags(t, p, words) for t, p in zip(texts, predicted, strict=True)]
    report = seqeval_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_type = {
        k: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for k, v in report.items()
        if not k.endswith("avg")
    }
    return {
        "per_type": per_type,
        "micro": {
            k: float(report["micro avg"][m])
            for k, m in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"))
        },
        "macro": {
            k: float(report["macro avg"][m])
            for k, m in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"))
        },
    }


def entity_confusion(
    gold: Sequence[Sequence[tuple[int, int, str]]],
    predicted: Sequence[Sequence[tuple[int, int, str]]],
    types: Sequence[str],
) -> tuple[np.ndarray, list[str]]:
    """Confusion of entity types over spans with identical boundaries; `none` row/column = missed/spurious."""
    names = [*types, "none"]
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        pred_by_range = {(s, e): label for s, e, label in pred_spans}
        gold_ranges = set()
        for start, end, label in gold_spans:
            gold_ranges.add((start, end))
            matrix[index[label], index.get(pred_by_range.get((start, end), "none"), index["none"])] += 1
        for start, end, label in pred_spans:
            if (start, end) not in gold_ranges:
                matrix[index["none"], index.get(label, index["none"])] += 1
    return matrix, names
