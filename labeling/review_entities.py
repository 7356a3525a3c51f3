"""Entity annotation errors: spans the out-of-fold models reject or type otherwise, and spans nobody marked.

Two sources of evidence, both from the other folds only: a per-token tagger (`review_tagger`) and the surface
forms, i.e. how often the same string was annotated with each type, or left unannotated, in the other folds'
paragraphs. They are pooled as pseudo-counts: q = (surface counts + w · tagger distribution) / (n + w), over
the entity types plus "none". A given span's score is 1 − q[given type]; a candidate span nobody annotated
(found by the tagger, or a string the other folds annotate) scores 1 − q[none].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from frontwire.labeling.review_suspects import SpanAnnotation, Suspect, record_fields
from frontwire.labeling.review_tagger import TokenTagger, decode_spans, span_distribution
from frontwire.labeling.settings import ReviewConfig
from frontwire.records import Record
from frontwire.schema import LabelSchema

NONE = "none"
MAX_SURFACE_WORDS = 6  # longer annotated names are rare; their n-grams would only cost time


def out_of_fold_word_probabilities(
    records: Sequence[Record], folds: np.ndarray, schema: LabelSchema, config: ReviewConfig
) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    out: list[tuple[list[tuple[int, int]], np.ndarray] | None] = [None] * len(records)
    for fold in np.unique(folds):
        train = [records[i] for i in np.flatnonzero(folds != fold)]
        held = np.flatnonzero(folds == fold)
        tagger = TokenTagger(schema.bio_tags, config.tagger_c, config.tagger_max_iter, config.seed).fit(train)
        for i, result in zip(held, tagger.word_probabilities([records[i].text for i in held]), strict=True):
            out[i] = result
    return [r for r in out if r is not None]


def _occurrences(record: Record, words: Sequence[tuple[int, int]], known: set[str]) -> list[tuple[int, int, str]]:
    """Word n-grams of the record whose text is a known annotated surface: (start, end, gold type or none);
    n-grams that only partly overlap an annotated span are left out (they are part of another name)."""
    gold = {(s.start, s.end): s.label for s in record.entities}
    found = []
    for i in range(len(words)):
        for j in range(i, min(i + MAX_SURFACE_WORDS, len(words))):
            start, end = words[i][0], words[j][1]
            if record.text[start:end] not in known:
                continue
            if (start, end) in gold:
                found.append((start, end, gold[(start, end)]))
            elif not any(s.start < end and start < s.end for s in record.entities):
                found.append((start, end, NONE))
    return found


def surface_counts(
    records: Sequence[Record], folds: np.ndarray, words: Sequence[Sequence[tuple[int, int]]]
) -> tuple[dict[str, dict[int, dict[str, int]]], list[list[tuple[int, int, str]]]]:
    """Per surface string, per fold, how often it was annotated as each type or left as none; and each
    record's own occurrences."""
    known = {r.surface(s) for r in records for s in r.entities}
    counts: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    per_record = []
    for record, fold, w in zip(records, folds, words, strict=True):
        found = _occurrences(record, w, known)
        for start, end, label in found:
            counts[record.text[start:end]][int(fold)][label] += 1
        per_record.append(found)
    return counts, per_record


def entity_suspects(
    records: Sequence[Record],
    folds: np.ndarray,
    word_probs: Sequence[tuple[list[tuple[int, int]], np.ndarray]],
    schema: LabelSchema,
    config: ReviewConfig,
) -> list[Suspect]:
    """Scored entity suspects over every given span and every unannotated candidate, best first."""
    types = schema.entity_names
    classes = [*types, NONE]
    tags = schema.bio_tags
    counts, occurrences = surface_counts(records, folds, [w for w, _ in word_probs])
    suspects: list[Suspect] = []
    for record, fold, (words, probs), found in zip(records, folds, word_probs, occurrences, strict=True):

        def pooled(
            start: int, end: int, record: Record = record, fold: int = int(fold), words: list = words, probs=probs
        ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
            tagger = span_distribution(words, probs, tags, types, start, end)
            by_fold = counts.get(record.text[start:end], {})
            other = {c: sum(n.get(c, 0) for f, n in by_fold.items() if f != fold) for c in classes}
            vector = np.array([other[c] for c in classes], dtype=np.float64)
            q = (vector + config.surface_weight * tagger) / (vector.sum() + config.surface_weight)
            return q, tagger, {c: n for c, n in other.items() if n}

        base = record_fields(record)
        for span in record.entities:
            q, tagger, other = pooled(span.start, span.end)
            given = classes.index(span.label)
            rivals = [c for c in range(len(classes)) if c != given]
            best = max(rivals, key=lambda c: q[c])
            suggested_type = classes[best]
            suspects.append(
                Suspect(
                    kind="entity",
                    error="span_rejected" if suggested_type == NONE else "span_type",
                    score=round(float(1.0 - q[given]), 6),
                    rank=0,
                    topic=None,
                    span=(span.start, span.end),
                    given=SpanAnnotation(start=span.start, end=span.end, label=span.label, text=record.surface(span)),
                    suggested=None
                    if suggested_type == NONE
                    else SpanAnnotation(
                        start=span.start, end=span.end, label=suggested_type, text=record.surface(span)
                    ),
                    evidence=_evidence(classes, q, tagger, other),
                    **base,
                )
            )
        candidates = {(s, e) for s, e, _ in decode_spans(words, probs, tags)}
        candidates |= {(s, e) for s, e, label in found if label == NONE}
        candidates = {
            (s, e) for s, e in candidates if not any(g.start < e and s < g.end for g in record.entities)
        }
        scored = []
        for start, end in candidates:
            q, tagger, other = pooled(start, end)
            scored.append((float(1.0 - q[-1]), start, end, q, tagger, other))
        kept: list[tuple[int, int]] = []
        for score, start, end, q, tagger, other in sorted(scored, key=lambda row: (-row[0], row[1], row[2])):
            if any(s < end and start < e for s, e in kept):
                continue  # overlapping candidates: the most likely reading wins
            kept.append((start, end))
            label = types[int(np.argmax(q[:-1]))]
            suspects.append(
                Suspect(
                    kind="entity",
                    error="span_missing",
                    score=round(score, 6),
                    rank=0,
                    topic=None,
                    span=(start, end),
                    given=None,
                    suggested=SpanAnnotation(start=start, end=end, label=label, text=record.text[start:end]),
                    evidence=_evidence(classes, q, tagger, other),
                    **base,
                )
            )
    suspects.sort(key=lambda s: (-s.score, s.record_id, s.span or (0, 0)))
    return suspects


def _evidence(classes: list[str], q: np.ndarray, tagger: np.ndarray, other: dict[str, int]) -> dict[str, object]:
    return {
        "pooled": {c: round(float(v), 4) for c, v in zip(classes, q, strict=True)},
        "tagger": {c: round(float(v), 4) for c, v in zip(classes, tagger, strict=True)},
        "surface_counts_other_folds": other,
    }
