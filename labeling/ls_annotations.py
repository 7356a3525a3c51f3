"""A task's annotations, checked and chosen: which one the annotation policy uses, and what its result says.

Damage among annotations is decided so that a damaged annotation never changes whose labels a record gets:

- a cancelled annotation (`was_cancelled: true`) is never used, whatever else it holds (its result is not read);
- an exact copy of an annotation is dropped and reported (`duplicate_annotation`); two different annotations
  with the same id are a task error (`duplicate_annotation_id`): which one is real cannot be told;
- an annotation whose policy fields (`id`, `was_cancelled`, `ground_truth`, `created_at`, `updated_at`) are
  unreadable, or that is not an object, cannot be ranked, so it may be the one the policy should pick: task error;
- a damaged annotation that the policy (latest, ground_truth) ranks below the one it picks is dropped and
  reported (`dropped_annotation`, naming annotation id and field); if the pick itself is damaged the task is an
  error (`invalid_annotation`): falling back to the runner-up would silently swap one annotator for another;
- under `majority` every live annotation votes, so any damaged one is a task error (its votes are unknown).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from frontwire.labeling.ls_spans import locate_span
from frontwire.labeling.ls_types import (
    AnnotationBody,
    AnnotationRank,
    ChoicesValue,
    Damage,
    LabelsValue,
    ResultItem,
    SpanValue,
    check,
    describe,
    render,
    report_id,
)
from frontwire.labeling.settings import LabelingConfig

Span = tuple[int, int, str]
Note = Callable[..., None]


class TaskRejected(Exception):
    def __init__(self, reason: str, detail: str, field: str | None = None, annotation_id: Any = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.annotation_id = annotation_id


@dataclass
class Candidate:
    """A live (not cancelled) annotation: `rank` is None when it cannot be ranked, `damage` its first problem."""

    index: int
    raw: Any
    rank: AnnotationRank | None
    damage: Damage | None
    body: AnnotationBody | None = None
    # (item index, the item, its checked value: ChoicesValue, LabelsValue, or None for a foreign result)
    values: list[tuple[int, ResultItem, ChoicesValue | LabelsValue | None]] = field(default_factory=list)

    @property
    def id(self) -> Any:
        return report_id(self.raw.get("id")) if isinstance(self.raw, dict) else None

    @property
    def path(self) -> str:
        return f"annotations[{self.index}]"


def live_candidates(annotations: list[Any], config: LabelingConfig, note: Note) -> tuple[list[Candidate], int]:
    """The live annotations, checked, exact copies dropped; and how many were cancelled."""
    candidates: list[Candidate] = []
    cancelled = 0
    first_of: dict[str, int] = {}
    by_id: dict[int, int] = {}
    for index, raw in enumerate(annotations):
        if isinstance(raw, dict) and raw.get("was_cancelled") is True:
            cancelled += 1
            continue
        key = json.dumps(raw, sort_keys=True, default=repr, ensure_ascii=True)
        if key in first_of:
            note(
                "duplicate_annotation",
                f"annotations[{index}] is an exact copy of annotations[{first_of[key]}]; the copy is dropped",
                field=f"annotations[{index}]",
                annotation_id=report_id(raw.get("id")) if isinstance(raw, dict) else None,
            )
            continue
        first_of[key] = index
        candidate = _check(index, raw, config)
        ann_id = candidate.rank.id if candidate.rank else None
        if ann_id is not None:
            if ann_id in by_id:
                raise TaskRejected(
                    "duplicate_annotation_id",
                    f"annotations[{by_id[ann_id]}] and annotations[{index}] both have id {ann_id} but differ",
                    f"annotations[{index}].id",
                    ann_id,
                )
            by_id[ann_id] = index
        candidates.append(candidate)
    return candidates, cancelled


def _check(index: int, raw: Any, config: LabelingConfig) -> Candidate:
    path = f"annotations[{index}]"
    rank = check(AnnotationRank, raw, path)
    if isinstance(rank, Damage):
        return Candidate(index, raw, None, rank)
    body = check(AnnotationBody, raw, path)
    if isinstance(body, Damage):
        return Candidate(index, raw, rank, body)
    candidate = Candidate(index, raw, rank, None, body)
    for i, item in enumerate(body.result or []):
        where = f"{path}.result[{i}].value"
        if item.type == "choices" and item.from_name == config.topics_control:
            value = check(ChoicesValue, item.value, where)
        elif item.type == "labels" and item.from_name == config.entities_control:
            value = check(LabelsValue, item.value, where)
        else:
            candidate.values.append((i, item, None))
            continue
        if isinstance(value, Damage):
            candidate.damage = value
            return candidate
        candidate.values.append((i, item, value))
    return candidate


def choose(candidates: list[Candidate], policy: str, note: Note) -> list[Candidate]:
    """The annotations the policy uses (see the module docstring for damaged ones)."""
    unranked = next((c for c in candidates if c.rank is None), None)
    if unranked is not None:
        raise _invalid(unranked, "cannot be ranked by the annotation policy, so it may be the one to use")
    if policy == "majority":
        damaged = next((c for c in candidates if c.damage is not None), None)
        if damaged is not None:
            raise _invalid(damaged, "its votes are unknown under the majority policy")
        return candidates
    pool = candidates
    if policy == "ground_truth":
        pool = [c for c in candidates if c.rank and c.rank.ground_truth] or candidates
    pick = max(pool, key=lambda c: c.rank.recency() if c.rank else ("", 0))
    if pick.damage is not None:
        raise _invalid(pick, f"it is the one the {policy} policy picks")
    for other in candidates:
        if other is not pick and other.damage is not None:
            note(
                "dropped_annotation",
                f"{other.path} (id {other.id}) is damaged and not the one the {policy} policy picks: "
                f"{other.damage.field}: {other.damage.detail}",
                field=other.damage.field,
                annotation_id=other.id,
            )
    return [pick]


def _invalid(candidate: Candidate, why: str) -> TaskRejected:
    damage = candidate.damage or Damage(candidate.path, "is damaged")
    return TaskRejected("invalid_annotation", f"{damage.field}: {damage.detail}; {why}", damage.field, candidate.id)


def parse_result(candidate: Candidate, text: str, config: LabelingConfig, note: Note) -> tuple[list[str], list[Span]]:
    """Topics and located spans of a checked annotation; span problems follow `on_bad_span`."""
    labels: list[str] = []
    spans: list[Span] = []
    for i, item, value in candidate.values:
        where = f"{candidate.path}.result[{i}].value"
        if isinstance(value, ChoicesValue):
            labels.extend(value.choices)
        elif isinstance(value, LabelsValue):
            if len(value.labels) != 1:
                raise TaskRejected(
                    "ambiguous_span", f"span at {where} has labels {render(value.labels)}", where, candidate.id
                )
            located, problem = _locate(item.value, text, config, note)
            if located is None:
                detail = f"span at {where} ({render(value.labels[0])}) {problem}"
                if config.on_bad_span == "drop_task":
                    raise TaskRejected("bad_span", detail, where, candidate.id)
                note("dropped_span", detail, field=where)
                continue
            spans.append((*located, value.labels[0]))
        else:
            note(
                "ignored_result",
                f"result of type {render(item.type)!r} from control {render(item.from_name)!r} "
                "is not part of the schema",
                field=f"{candidate.path}.result[{i}]",
            )
    return sorted(set(labels)), sorted(set(spans))


def _locate(value: dict[str, Any], text: str, config: LabelingConfig, note: Note) -> tuple[tuple[int, int] | None, str]:
    span = check(SpanValue, value, "")
    if isinstance(span, Damage):
        return None, f"has unusable {span.field}: {span.detail}"
    if span.start < 0 or span.end < span.start:
        return None, f"has offsets {span.start}-{span.end} (negative or reversed)"
    located = locate_span(text, span.start, span.end, span.text, config, note)
    if located is None:
        return None, f"{span.start}-{span.end} {describe(span.text)} not found in text"
    return located, ""


def majority(parsed: list[tuple[list[str], list[Span]]]) -> tuple[list[str], list[Span]]:
    quorum = len(parsed) / 2
    label_votes = Counter(label for labels, _ in parsed for label in labels)
    span_votes = Counter(span for _, spans in parsed for span in spans)
    return (
        sorted(label for label, n in label_votes.items() if n > quorum),
        sorted(span for span, n in span_votes.items() if n > quorum),
    )
