"""Planted annotation errors, to measure the review (bench/review_planted.py and tests); never used to rank.

Topics: a share of the records each get one topic toggled (removed if given, added if not), chosen among the
toggles that leave the record valid under the exclusive topics. Entities: a share of all annotated spans are
dropped or given another entity type, half and half. Everything is drawn from one seeded generator.

Recovered (what `recovery` counts): a planted topic error is recovered when a topic suspect names the same
record and topic; a planted entity error when an entity suspect on the same record has exactly the planted
span's character range (start and end), whatever kind of error the suspect says it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontwire.labeling.review_suspects import Suspect
from frontwire.records import EntitySpan, Record
from frontwire.schema import LabelSchema


@dataclass(frozen=True)
class Planted:
    topics: set[tuple[str, str]]  # (record id, topic)
    spans: set[tuple[str, int, int]]  # (record id, start, end)


def plant_errors(
    records: Sequence[Record], schema: LabelSchema, topic_rate: float, span_rate: float, seed: int
) -> tuple[list[Record], Planted]:
    rng = np.random.default_rng(seed)
    out = [r.model_copy(deep=True) for r in records]
    exclusive = set(schema.exclusive_topics)
    planted_topics: set[tuple[str, str]] = set()
    for i in rng.choice(len(out), size=round(topic_rate * len(out)), replace=False):
        record = out[int(i)]
        toggles = [t for t in schema.topic_names if _valid_toggle(record.labels, t, exclusive)]
        topic = toggles[int(rng.integers(len(toggles)))]
        chosen = set(record.labels) ^ {topic}
        record.labels = [t for t in schema.topic_names if t in chosen]
        planted_topics.add((record.id, topic))
    all_spans = [(i, j) for i, r in enumerate(out) for j in range(len(r.entities))]
    picked = rng.choice(len(all_spans), size=round(span_rate * len(all_spans)), replace=False)
    drops: dict[int, set[int]] = {}
    planted_spans: set[tuple[str, int, int]] = set()
    for index in sorted(int(p) for p in picked):
        i, j = all_spans[index]
        span = out[i].entities[j]
        planted_spans.add((out[i].id, span.start, span.end))
        if rng.random() < 0.5:
            drops.setdefault(i, set()).add(j)
        else:
            others = [t for t in schema.entity_names if t != span.label]
            retyped = others[int(rng.integers(len(others)))]
            out[i].entities[j] = EntitySpan(start=span.start, end=span.end, label=retyped)
    for i, dropped in drops.items():
        out[i].entities = [s for j, s in enumerate(out[i].entities) if j not in dropped]
    return out, Planted(planted_topics, planted_spans)


def _valid_toggle(labels: list[str], topic: str, exclusive: set[str]) -> bool:
    if topic in labels:
        return True
    if topic in exclusive:
        return not labels
    return not (set(labels) & exclusive)


def recovery(suspects: Sequence[Suspect], planted: Planted) -> dict[str, Any]:
    """Precision and recall at k = number planted, per kind, by the matching rules in the module docstring."""
    topic = [s for s in suspects if s.kind == "topic"]
    entity = [s for s in suspects if s.kind == "entity"]
    return {
        "topic": _at_k([(s.record_id, s.topic) for s in topic], planted.topics),
        "entity": _at_k([(s.record_id, *s.span) for s in entity if s.span], planted.spans),
    }


def _at_k(ranked: list[tuple[Any, ...]], truth: set[tuple[Any, ...]]) -> dict[str, Any]:
    k = len(truth)
    top = ranked[:k]
    hits = len(set(top) & truth)
    return {
        "planted": k,
        "suspects": len(ranked),
        "hits_at_k": hits,
        "precision_at_k": hits / len(top) if top else 0.0,
        "recall_at_k": hits / k if k else 0.0,
        "recall_all_suspects": len(set(ranked) & truth) / k if k else 0.0,
    }
