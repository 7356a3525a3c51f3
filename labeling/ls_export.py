"""Turn Label Studio JSON export tasks into validated records, accounting for every task.

Each task becomes a record or one row in the error report (`ImportIssue`, severity "error"); fixes applied on
the way (UTF-16 offsets, relocated or trimmed spans, overlaps resolved, exact copies of an annotation dropped)
are reported with severity "repaired" so they can be audited. Policies come from `LabelingConfig`.

The import is total: whatever JSON value each task is, `convert_export` does not raise. Every level (task,
data, annotations, annotation, result item, value) is checked for type and shape (`ls_types`) before it is used;
anything off is an error row naming the task id (as given; a list or object id is rendered), its position in
the export, the annotation id and the field path (`annotations[0].result[2].value.labels`). Text or data that
could not be written back unchanged (lone surrogates, NaN, absurd nesting) is an error too, never mangled.
How damage among several annotations is decided is in `ls_annotations`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from frontwire.labeling.ls_annotations import Span, TaskRejected, choose, live_candidates, majority, parse_result
from frontwire.labeling.ls_types import Damage, TaskShape, check, clean, describe, report_id, unsafe_value
from frontwire.labeling.settings import LabelingConfig
from frontwire.records import EntitySpan, Record
from frontwire.schema import LabelSchema

ERROR, REPAIRED = "error", "repaired"


@dataclass(frozen=True)
class ImportIssue:
    task_id: Any  # as the export gives it (int, str), rendered when it is a list/object; "#<position>" if absent
    record_id: str | None
    severity: str
    reason: str
    detail: str
    position: int  # index of the task in the export: unique even when ids are missing, repeated or junk
    annotation_id: Any
    field: str | None  # path inside the task, e.g. "annotations[0].result[2].value"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportResult:
    records: list[Record] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    tasks: int = 0
    record_positions: list[int] = field(default_factory=list)  # export position of each record, in order

    @property
    def failed_tasks(self) -> int:
        return len({i.position for i in self.issues if i.severity == ERROR})

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


@dataclass
class _Task:
    """One task on its way through: what every report row about it names."""

    position: int
    task_id: Any
    record_id: str | None = None
    repairs: list[ImportIssue] = field(default_factory=list)

    def issue(self, severity: str, reason: str, detail: str, annotation_id: Any, where: str | None) -> ImportIssue:
        record_id = None if self.record_id is None else clean(self.record_id)
        where = None if where is None else clean(where)
        return ImportIssue(
            self.task_id, record_id, severity, reason, clean(detail), self.position, annotation_id, where
        )

    def note(self, reason: str, detail: str, field: str | None = None, annotation_id: Any = None) -> None:
        self.repairs.append(self.issue(REPAIRED, reason, detail, annotation_id, field))


def convert_export(tasks: Iterable[Any], schema: LabelSchema, config: LabelingConfig) -> ImportResult:
    result = ImportResult()
    seen_ids: dict[str, Any] = {}
    seen_texts: dict[str, Record] = {}
    for position, task in enumerate(tasks):
        result.tasks += 1
        raw_id = task.get("id") if isinstance(task, dict) else None
        current = _Task(position, f"#{position}" if raw_id is None else report_id(raw_id))
        try:
            shape = check(TaskShape, task, "")
            if isinstance(shape, Damage):
                if not isinstance(task, dict):
                    detail = f"task at position {position} is {describe(task)}, not a JSON object"
                    raise TaskRejected("malformed_task", detail)
                raise TaskRejected("invalid_task", f"{shape.field}: {shape.detail}", shape.field)
            data = _checked_data(task, config)
            current.record_id = _record_id(shape, data)
            _check_values(data, config)
            record = _convert_task(shape, data, current.record_id, schema, config, current.note)
            if record.id in seen_ids:
                raise TaskRejected(
                    "duplicate_id", f"record id {record.id!r} already came from task {seen_ids[record.id]}"
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
            result.issues.append(
                current.issue(ERROR, rejected.reason, rejected.detail, rejected.annotation_id, rejected.field)
            )
            continue
        seen_ids[record.id] = current.task_id
        seen_texts[text_key] = record
        result.issues.extend(current.repairs)
        result.records.append(record)
        result.record_positions.append(position)
    return result


def _checked_data(task: dict[str, Any], config: LabelingConfig) -> dict[str, Any]:
    data = task.get("data")
    if data is None:
        raise TaskRejected("no_text", f"task data has no {config.text_field!r} field", "data")
    if not isinstance(data, dict):
        raise TaskRejected("invalid_data", f"data: is {describe(data)}, not a JSON object", "data")
    paragraph_id = data.get("paragraph_id")
    if paragraph_id is not None and (isinstance(paragraph_id, bool) or not isinstance(paragraph_id, str | int)):
        raise TaskRejected(
            "invalid_data", f"data.paragraph_id: is {describe(paragraph_id)}, not a string", "data.paragraph_id"
        )
    return data


def _record_id(shape: TaskShape, data: dict[str, Any]) -> str:
    if data.get("paragraph_id") not in (None, ""):
        return str(data["paragraph_id"])
    if shape.id is None:
        raise TaskRejected("malformed_task", "task has neither data.paragraph_id nor an id", "id")
    return str(shape.id)


def _check_values(data: dict[str, Any], config: LabelingConfig) -> None:
    text_path = f"data.{config.text_field}"
    if config.text_field not in data:
        raise TaskRejected("no_text", f"task data has no {config.text_field!r} field", text_path)
    unsafe = unsafe_value(data, "data")
    if unsafe is not None:
        reason = "invalid_text" if unsafe.field == text_path else "invalid_data"
        raise TaskRejected(reason, f"{unsafe.field}: {unsafe.detail}", unsafe.field)
    text = data[config.text_field]
    if not isinstance(text, str):
        raise TaskRejected("invalid_text", f"{text_path}: is {describe(text)}, not a string", text_path)
    if not text.strip():
        raise TaskRejected("empty_text", "paragraph text is empty or whitespace", text_path)


def _convert_task(
    shape: TaskShape,
    data: dict[str, Any],
    record_id: str,
    schema: LabelSchema,
    config: LabelingConfig,
    note,
) -> Record:
    text: str = data[config.text_field]
    annotations = shape.annotations or []
    if not annotations:
        predictions = len(shape.predictions or [])
        detail = "no annotation yet" + (
            f" (has {predictions} predictions, which are not labels)" if predictions else ""
        )
        raise TaskRejected("unlabeled", detail, "annotations")
    live, cancelled = live_candidates(annotations, config, note)
    if not live:
        raise TaskRejected("cancelled", f"all {cancelled} annotations were cancelled (skipped)", "annotations")
    chosen = choose(live, config.annotation_policy, note)

    parsed = []
    for candidate in chosen:

        def bound(reason: str, detail: str, field: str | None = None, annotation_id: Any = candidate.id) -> None:
            note(reason, detail, field=field, annotation_id=annotation_id)

        parsed.append(parse_result(candidate, text, config, bound))
    if config.annotation_policy == "majority" and len(parsed) > 1:
        labels, spans = majority(parsed)
    else:
        labels, spans = parsed[0]

    unknown = sorted(set(labels) - set(schema.topic_names))
    unknown += sorted({s[2] for s in spans} - set(schema.entity_names))
    if unknown:
        raise TaskRejected("unknown_label", f"labels not in schema {schema.tag}: {unknown}")
    spans = _resolve_overlaps(spans, text, config, note)
    ordered_labels = [name for name in schema.topic_names if name in set(labels)]

    meta = {k: v for k, v in data.items() if k != config.text_field}
    one = chosen[0] if len(chosen) == 1 else None
    meta.update(
        annotator=one.body.completed_by if one else [c.body.completed_by for c in chosen],
        ls_task_id=shape.id,
        ls_annotation_id=one.rank.id if one else [c.rank.id for c in chosen],
        ls_project=shape.project,
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
