"""NER evaluation: seqeval strict metrics, an error breakdown, the entity-type confusion and the worst misses.

Breakdown and bootstrap compare spans on words (the tokenization `frontwire.metrics` scores with), so a span
that cuts a word counts as the whole word, as it does in seqeval, and their counts agree with the metrics.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontwire.metrics import _WORD, entity_confusion, entity_metrics
from frontwire.records import Record

CATEGORIES = ("correct", "wrong_type", "wrong_boundary", "wrong_both", "missed", "spurious")
Span = tuple[int, int, str]


def word_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word, as `frontwire.metrics` splits text for seqeval."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def project(words: Sequence[tuple[int, int]], spans: Sequence[Span]) -> list[Span]:
    """Character spans → (first word, last word + 1, label) over the words they touch; empty spans vanish."""
    starts, ends = [w[0] for w in words], [w[1] for w in words]
    projected = []
    for start, end, label in spans:
        first, stop = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end)
        if first < stop:
            projected.append((first, stop, label))
    return projected


def breakdown(gold: Sequence[Span], predicted: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """Each gold span gets one category (correct, wrong_type, wrong_boundary, wrong_both, missed) with the
    prediction it was judged against; each prediction touching no gold span is spurious."""
    events: list[tuple[str, Span | None, Span | None]] = []
    for g in gold:
        exact = [p for p in predicted if p[:2] == g[:2]]
        overlapping = [p for p in predicted if p[0] < g[1] and g[0] < p[1]]
        same_type = [p for p in overlapping if p[2] == g[2]]
        if exact:
            events.append(("correct" if exact[0][2] == g[2] else "wrong_type", g, exact[0]))
        elif same_type:
            events.append(("wrong_boundary", g, same_type[0]))
        elif overlapping:
            events.append(("wrong_both", g, overlapping[0]))
        else:
            events.append(("missed", g, None))
    for p in predicted:
        if not any(p[0] < g[1] and g[0] < p[1] for g in gold):
            events.append(("spurious", None, p))
    return events


@dataclass
class EntityRun:
    predicted: list[list[dict[str, Any]]]
    seconds: float


def predict_entities(model, texts: Sequence[str], batch_size: int) -> EntityRun:
    started = time.perf_counter()
    predicted = model.entities(list(texts), batch_size) if texts else []
    return EntityRun(predicted, time.perf_counter() - started)


@dataclass
class EntityEvaluation:
    summary: dict[str, Any]
    tp: np.ndarray  # [paragraphs, types] strict matches, for the bootstrap
    fp: np.ndarray
    fn: np.ndarray
    macro_columns: np.ndarray  # types seqeval averages over: present in gold or predictions
    confusion: tuple[np.ndarray, list[str]]
    rows: list[dict[str, Any]]


def evaluate_entities(
    records: Sequence[Record], run: EntityRun, types: Sequence[str], top: int, examples: int = 20
) -> EntityEvaluation:
    texts = [r.text for r in records]
    gold_chars = [[(s.start, s.end, s.label) for s in r.entities] for r in records]
    pred_chars = [[(e["start"], e["end"], e["label"]) for e in ents] for ents in run.predicted]
    index = {t: i for i, t in enumerate(types)}
    tp, fp, fn = (np.zeros((len(records), len(types)), dtype=np.int64) for _ in range(3))
    counts: Counter[str] = Counter()
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES if c != "correct"}
    gold_words, pred_words, rows = [], [], []
    for i, record in enumerate(records):
        words = word_offsets(record.text)
        gold, pred = project(words, gold_chars[i]), project(words, pred_chars[i])
        gold_words.append(gold)
        pred_words.append(pred)
        matched = set(gold) & set(pred)
        for span in gold:
            (tp if span in matched else fn)[i, index[span[2]]] += 1
        for span in pred:
            if span not in matched:
                fp[i, index[span[2]]] += 1
        events = breakdown(gold, pred)
        counts.update(category for category, _, _ in events)
        for category, g, p in events:
            if category != "correct" and len(samples[category]) < examples:
                samples[category].append(
                    {
                        "record_id": record.id,
                        "gold": _surface(record.text, words, g),
                        "predicted": _surface(record.text, words, p),
                    }
                )
        errors = sum(1 for category, _, _ in events if category != "correct")
        if errors:
            rows.append(_row(record, run.predicted[i], words, matched, errors, events))
    metrics = entity_metrics(texts, gold_chars, pred_chars) if records else {}
    confusion = entity_confusion(gold_words, pred_words, types)
    summary = {
        "metrics": metrics,
        "error_breakdown": {
            "counts": {c: counts.get(c, 0) for c in CATEGORIES},
            "gold_entities": int(tp.sum() + fn.sum()),
            "predicted_entities": int(tp.sum() + fp.sum()),
            "examples": samples,
        },
        "confusion": {"labels": confusion[1], "matrix": confusion[0].tolist()},
    }
    rows.sort(key=lambda r: (-r["errors"], -(r["confidence"] if r["confidence"] is not None else -1.0)))
    macro_columns = (tp + fn + fp).sum(0) > 0
    return EntityEvaluation(summary, tp, fp, fn, macro_columns, confusion, rows[:top])


def _surface(text: str, words: Sequence[tuple[int, int]], span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    start, end = words[span[0]][0], words[span[1] - 1][1]
    return {"start": start, "end": end, "label": span[2], "text": text[start:end]}


def _row(
    record: Record, predicted: list[dict[str, Any]], words, matched: set[Span], errors: int, events
) -> dict[str, Any]:
    wrong_scores = [
        e["score"]
        for e in predicted
        if not any(p in matched for p in project(words, [(e["start"], e["end"], e["label"])]))
    ]
    return {
        "id": record.id,
        "text": record.text,
        "errors": errors,
        # the model's confidence in its worst wrong span; None when it only missed entities
        "confidence": max(wrong_scores) if wrong_scores else None,
        "error_kinds": dict(Counter(c for c, _, _ in events if c != "correct")),
        "gold": [{"start": s.start, "end": s.end, "label": s.label} for s in record.entities],
        "predicted": [{k: e[k] for k in ("start", "end", "label", "score")} for e in predicted],
    }
