"""Turn Label Studio JSON export tasks into validated records, accounting for every task.

Each task becomes a record or a row in the error report (`ImportIssue`, severity "error"); fixes applied on
the way (UTF-16 offsets, relocated or trimmed spans, overlaps resolved) are reported with severity
"repaired" so they can be audited. Policies come from `LabelingConfig`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from frontwire.labeling.ls_spans import locate_span
from frontwire.labeling.settings import LabelingConfig
from frontwire.records import EntitySpan, Record
from frontwire.schema import LabelSchema

ERROR, REPAIRED = "error", "repaired"


@dataclass(frozen=True)
class ImportIssue:
    task_id: Any
    record_id: str | None
    severity: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportResult:
    records: list[Record] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    tasks: int = 0

    @property
    def failed_tasks(self) -> int:
        return len({(i.task_id, i.record_id) for i in self.issues if i.severity == ERROR})

    def summary(self) -> dict[str, Any]:
        errors = Counter(i.reason for i in self.issues if i.severity == ERROR)
        repairs = Counter(i.reason for i in self.issues if i.severity == REPAIRED)
        return {
            "tasks": self.tasks,
            "records": len(self.records),
            "errors": sum(errors.values()),
            "errors_by_reason": dict(sorted(errors.items())),
            "repairs_by_reason": dict(sorted(repairs.items())),
        }


class TaskRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def convert_export(tasks: Iterable[Any], schema: LabelSchema, config: LabelingConfig) -> ImportResult:
    result = ImportResult()
    seen_ids: dict[str, Any] = {}
    seen_texts: dict[str, Record] = {}
    for position, task in enumerate(tasks):
        result.tasks += 1
        task_id = task.get("id", f"#{position}") if isinstance(task, Mapping) else f"#{position}"
        record_id: str | None = None
        repairs: list[ImportIssue] = []
        try:
            if not isinstance(task, Mapping):
                raise TaskRejected("malformed_task", f"task at position {position} is not a JSON object")
            record_id = _record_id(task)
            record = _convert_task(task, record_id, schema, config, repairs)
            if record_id in seen_ids:
                raise TaskRejected(
                    "duplicate_id", f"record id {record_id!r} already came from task {seen_ids[record_id]}"
                )
            text_key = " ".join(record.text.split())
            if config.deduplicate_text and text_key in seen_texts:
                first = seen_texts[text_key]
                agree = first.labels == record.labels and first.entities == record.entities
                raise TaskRejected(
                    "duplicate_text",
                    f"same text as record {first.id} (task {first.meta.get('ls_task_id')}); "
                    f"annotations {'agree' if agree else 'DIFFER'}",
                )
        except TaskRejected as rejected:
            result.issues.append(ImportIssue(task_id, record_id, ERROR, rejected.reason, rejected.detail))
            continue
        seen_ids[record_id] = task_id
        seen_texts[text_key] = record
        result.issues.extend(repairs)
        result.records.append(record)
    return result


def _record_id(task: Mapping[str, Any]) -> str:
    data = task.get("data")
    if isinstance(data, Mapping) and data.get("paragraph_id") not in (None, ""):
        return str(data["paragraph_id"])
    if task.get("id") is None:
        raise TaskRejected("malformed_task", "task has neither data.paragraph_id nor an id")
    return str(task["id"])


def _convert_task(
    task: Mapping[str, Any],
    record_id: str,
    schema: LabelSchema,
    config: LabelingConfig,
    repairs: list[ImportIssue],
) -> Record:
    data = task.get("data")
    if not isinstance(data, Mapping) or config.text_field not in data:
        raise TaskRejected("no_text", f"task data has no {config.text_field!r} field")
    text = data[config.text_field]
    if not isinstance(text, str) or not text.strip():
        raise TaskRejected("empty_text", "paragraph text is empty or whitespace")

    annotations = [a for a in task.get("annotations") or [] if isinstance(a, Mapping)]
    live = [a for a in annotations if not a.get("was_cancelled")]
    if not annotations:
        predictions = len(task.get("predictions") or [])
        detail = "no annotation yet" + (
            f" (has {predictions} predictions, which are not labels)" if predictions else ""
        )
        raise TaskRejected("unlabeled", detail)
    if not live:
        raise TaskRejected("cancelled", f"all {len(annotations)} annotations were cancelled (skipped)")

    def note(reason: str, detail: str) -> None:
        repairs.append(ImportIssue(task.get("id"), record_id, REPAIRED, reason, detail))

    chosen = _choose(live, config.annotation_policy)
    parsed = [_parse_result(a, text, config, note) for a in chosen]
    if config.annotation_policy == "majority" and len(parsed) > 1:
        labels, spans = _majority(parsed)
    else:
        labels, spans = parsed[0]

    unknown = sorted(set(labels) - set(schema.topic_names))
    unknown += sorted({s[2] for s in spans} - set(schema.entity_names))
    if unknown:
        raise TaskRejected("unknown_label", f"labels not in schema {schema.tag}: {unknown}")
    spans = _resolve_overlaps(spans, text, config, note)
    ordered_labels = [name for name in schema.topic_names if name in set(labels)]

    meta = {k: v for k, v in data.items() if k != config.text_field}
    annotation = chosen[0] if len(chosen) == 1 else None
    meta.update(
        annotator=annotation.get("completed_by") if annotation else [a.get("completed_by") for a in chosen],
        ls_task_id=task.get("id"),
        ls_annotation_id=annotation.get("id") if annotation else [a.get("id") for a in chosen],
        ls_project=task.get("project"),
    )
    try:
        record = Record(
            id=record_id,
            text=text,
            labels=ordered_labels,
            entities=[EntitySpan(start=s, end=e, label=label) for s, e, label in spans],
            meta=meta,
        )
        record.check_schema(schema)
    except (ValidationError, ValueError) as err:
        reason = "exclusive_conflict" if "exclusive" in str(err) else "invalid_record"
        raise TaskRejected(reason, str(err).splitlines()[0] if reason == "exclusive_conflict" else str(err)) from err
    return record


def _choose(annotations: list[Mapping[str, Any]], policy: str) -> list[Mapping[str, Any]]:
    def recency(a: Mapping[str, Any]) -> tuple[str, int]:
        return (str(a.get("updated_at") or a.get("created_at") or ""), int(a.get("id") or 0))

    if policy == "majority":
        return annotations
    if policy == "ground_truth":
        marked = [a for a in annotations if a.get("ground_truth")]
        if marked:
            return [max(marked, key=recency)]
    return [max(annotations, key=recency)]


Span = tuple[int, int, str]


def _parse_result(
    annotation: Mapping[str, Any], text: str, config: LabelingConfig, note
) -> tuple[list[str], list[Span]]:
    labels: list[str] = []
    spans: list[Span] = []
    for item in annotation.get("result") or []:
        value = item.get("value") or {}
        kind, control = item.get("type"), item.get("from_name")
        if kind == "choices" and control == config.topics_control:
            labels.extend(value.get("choices") or [])
        elif kind == "labels" and control == config.entities_control:
            span_labels = value.get("labels") or []
            if len(span_labels) != 1:
                raise TaskRejected(
                    "ambiguous_span", f"span {value.get('start')}-{value.get('end')} has labels {span_labels}"
                )
            located = locate_span(text, value, config, note)
            if located is None:
                where = f"span {value.get('start')}-{value.get('end')} {value.get('text')!r}"
                detail = f"{where} ({span_labels[0]}) not found in text"
                if config.on_bad_span == "drop_task":
                    raise TaskRejected("bad_span", detail)
                note("dropped_span", detail)
                continue
            spans.append((*located, span_labels[0]))
        else:
            note("ignored_result", f"result of type {kind!r} from control {control!r} is not part of the schema")
    return sorted(set(labels)), sorted(set(spans))


def _majority(parsed: list[tuple[list[str], list[Span]]]) -> tuple[list[str], list[Span]]:
    quorum = len(parsed) / 2
    label_votes = Counter(label for labels, _ in parsed for label in labels)
    span_votes = Counter(span for _, spans in parsed for span in spans)
    return (
        sorted(label for label, n in label_votes.items() if n > quorum),
        sorted(span for span, n in span_votes.items() if n > quorum),
    )


def _resolve_overlaps(spans: list[Span], text: str, config: LabelingConfig, note) -> list[Span]:
    kept: list[Span] = []
    # Longest first: the guidelines ask for the longest name ("UN Security Council", not "UN").
    for span in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0], s[2])):
        clash = next((k for k in kept if span[0] < k[1] and k[0] < span[1]), None)
        if clash is None:
            kept.append(span)
            continue
        detail = (
            f"span {span[0]}-{span[1]} {text[span[0] : span[1]]!r} ({span[2]}) overlaps "
            f"{clash[0]}-{clash[1]} {text[clash[0] : clash[1]]!r} ({clash[2]})"
        )
        if config.on_overlap == "error":
            raise TaskRejected("overlapping_spans", detail)
        note("overlap_dropped", detail + "; kept the longer")
    return sorted(kept)
