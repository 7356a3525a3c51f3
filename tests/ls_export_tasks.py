"""Builders of real-format Label Studio export tasks for the import tests, and checks of an import's result.

The tasks copy the *shape* of a browser export (task fields, annotation fields, result items with UTF-16
offsets). Offsets are computed here independently of frontwire (`u16`), so a conversion bug in frontwire cannot
cancel itself out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from frontwire.labeling.ls_export import ERROR, REPAIRED, ImportResult, convert_export
from frontwire.labeling.settings import LabelingConfig, load_labeling_config
from frontwire.records import Record
from frontwire.schema import LabelSchema, load_schema

SCHEMA = load_schema()
TOPICS = [t for t in SCHEMA.topic_names if t not in SCHEMA.exclusive_topics]  # non-exclusive topics
EXCLUSIVE = SCHEMA.exclusive_topics[0]
ENT = SCHEMA.entity_names
assert len(TOPICS) >= 3 and len(ENT) >= 2, "the tests below need 3 non-exclusive topics and 2 entity types"
UNKNOWN_TOPIC = "not-a-topic-in-any-schema"
UNKNOWN_ENTITY = "NOT_AN_ENTITY_TYPE"


# --- building real-format export tasks ---


def u16(text: str) -> int:
    """Length in UTF-16 code units, as a browser counts (independent of frontwire.offsets)."""
    return len(text.encode("utf-16-le")) // 2


def choices(*labels: str) -> dict[str, Any]:
    return {
        "id": f"c{'-'.join(labels)}"[:10],
        "from_name": "topics",
        "to_name": "text",
        "type": "choices",
        "origin": "manual",
        "value": {"choices": list(labels)},
    }


def span(
    text: str,
    surface: str,
    label: str,
    *,
    occurrence: int = 0,
    shift: int = 0,
    python_offsets: bool = False,
    claimed: str | None = None,
) -> dict[str, Any]:
    """A `labels` result for the `occurrence`-th `surface` in `text`, with browser (UTF-16) offsets.

    `shift` moves the offsets (a stale span), `python_offsets` writes code-point offsets instead of UTF-16
    units, `claimed` overrides the `value.text` the export claims was selected.
    """
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(surface, start + 1)
    end = start + len(surface)
    if not python_offsets:
        start, end = u16(text[:start]), u16(text[:end])
    return {
        "id": f"s{start}{label}"[:10],
        "from_name": "entities",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start + shift, "end": end + shift, "text": claimed or surface, "labels": [label]},
    }


def annotation(
    ann_id: int,
    task_id: int,
    result: Sequence[dict[str, Any]],
    *,
    updated: str = "2024-03-01T10:00:00",
    cancelled: bool = False,
    ground_truth: bool = False,
    by: int = 1,
) -> dict[str, Any]:
    stamp = f"{updated}.000000Z"
    return {
        "id": ann_id,
        "completed_by": by,
        "result": list(result),
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "created_at": stamp,
        "updated_at": stamp,
        "draft_created_at": None,
        "lead_time": 12.5,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"uuid-{ann_id}",
        "import_id": None,
        "last_action": None,
        "bulk_created": False,
        "task": task_id,
        "project": 3,
        "updated_by": None,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
    }


def prediction(pred_id: int, task_id: int, result: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": pred_id,
        "model_version": "tfidf-2024-05",
        "score": 0.71,
        "result": list(result),
        "task": task_id,
        "project": 3,
        "created_ago": "1 day",
        "cluster": None,
        "neighbors": None,
        "mislabeling": 0.0,
        "model": None,
        "model_run": None,
    }


def task(
    task_id: int,
    text: str,
    annotations: Sequence[dict[str, Any]] = (),
    *,
    predictions: Sequence[dict[str, Any]] = (),
    paragraph_id: str | None = None,
    article_id: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"text": text}
    if paragraph_id is not None:
        data["paragraph_id"] = paragraph_id
    data["article_id"] = article_id or f"art-{task_id}"
    data["source"] = "testwire"
    data["published"] = "2024-03-01"
    cancelled = sum(1 for a in annotations if a["was_cancelled"])
    return {
        "id": task_id,
        "annotations": list(annotations),
        "drafts": [],
        "predictions": list(predictions),
        "data": data,
        "meta": {},
        "created_at": "2024-03-01T09:00:00.000000Z",
        "updated_at": "2024-03-01T09:00:00.000000Z",
        "allow_skip": True,
        "inner_id": task_id,
        "total_annotations": len(annotations) - cancelled,
        "cancelled_annotations": cancelled,
        "total_predictions": len(predictions),
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "project": 3,
        "updated_by": None,
        "comment_authors": [],
    }


def config(*overrides: str) -> LabelingConfig:
    return load_labeling_config(None, overrides)


def run(tasks: list[dict[str, Any]], *overrides: str, schema: LabelSchema = SCHEMA) -> ImportResult:
    result = convert_export(tasks, schema, config(*overrides))
    check_accounting(tasks, result)
    for record in result.records:
        record.check_schema(schema)
        assert record.text == next(t for t in tasks if t["id"] == record.meta["ls_task_id"])["data"]["text"]
    return result


def check_accounting(tasks: list[dict[str, Any]], result: ImportResult) -> None:
    """Every task is exactly one record or one error task; every report row names its task."""
    assert result.tasks == len(tasks)
    errors = [i for i in result.issues if i.severity == ERROR]
    error_tasks = [i.task_id for i in errors]
    record_tasks = [r.meta["ls_task_id"] for r in result.records]
    assert len(set(error_tasks)) == len(error_tasks), "one error row per failed task"
    assert len(result.records) + len(error_tasks) == len(tasks)
    assert result.failed_tasks == len(error_tasks)
    assert sorted(record_tasks + error_tasks) == sorted(t["id"] for t in tasks)
    for issue in result.issues:
        assert issue.task_id is not None and issue.task_id in {t["id"] for t in tasks}
        assert issue.reason and issue.detail
        assert issue.severity in (ERROR, REPAIRED)
    summary = result.summary()
    assert summary["records"] + summary["errors"] == summary["tasks"] == len(tasks)


def by_task(result: ImportResult) -> dict[Any, Record]:
    return {r.meta["ls_task_id"]: r for r in result.records}


def errors(result: ImportResult) -> dict[Any, str]:
    return {i.task_id: i.reason for i in result.issues if i.severity == ERROR}


def repairs(result: ImportResult) -> list[tuple[Any, str]]:
    return [(i.task_id, i.reason) for i in result.issues if i.severity == REPAIRED]


def surfaces(record: Record) -> list[tuple[str, str]]:
    return [(record.surface(s), s.label) for s in record.entities]
