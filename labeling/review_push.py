"""`frontwire labeling review --push`: the review's suspects as a review queue in the Label Studio project.

Why predictions: a prediction sits beside the annotators' annotations and never replaces one, so the queue
cannot damage what was annotated. Each task with suspects gets ONE prediction holding the whole suggested
paragraph annotation (the record's annotation with every suspect's change applied: topics toggled, spans
added, removed or retyped), so the annotator compares two complete annotations in the editor and accepts the
suggestion or keeps theirs. The prediction's `model_version` is "<review.model_version_prefix>-<YYYY-MM-DD>"
(UTC) and its score the strongest suspect's; the changed regions carry their suspect's score.

A saved Data Manager tab (`review.view_title`) lists the tasks whose predictions have that model_version.

Idempotent: a task that already has a prediction with the same model_version gets no second one, and the tab is
found by title and re-used (its filter moved to the current model_version). Suspects that cannot be pushed (no
task id on the record, a task id not in the project, a task whose text is not the record's) come back as
errors, one per record, for the CLI to print.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from label_studio_sdk import LabelStudio

from frontwire.labeling.ls_results import to_label_studio_result
from frontwire.labeling.review_suspects import SpanAnnotation, Suspect
from frontwire.labeling.review_topics import suggested_labels
from frontwire.labeling.settings import LabelingConfig
from frontwire.records import Record
from frontwire.schema import LabelSchema

log = logging.getLogger(__name__)

MODEL_VERSIONS_FILTER = "filter:tasks:predictions_model_versions"


@dataclass(frozen=True)
class PushError:
    record_id: str
    task_id: int | None
    suspects: int
    reason: str

    def __str__(self) -> str:
        task = f" (task {self.task_id})" if self.task_id is not None else ""
        return f"record {self.record_id}{task}: {self.suspects} suspect(s) not pushed: {self.reason}"


@dataclass
class ReviewPushOutcome:
    project_id: int
    model_version: str
    tasks: int  # tasks with suspects that are in the project
    created: int  # predictions added by this run
    already_there: int  # tasks that already had a prediction with this model_version
    view_id: int | None  # None: no suspect's task is in the project, so no tab was made
    view_created: bool
    errors: list[PushError] = field(default_factory=list)


def review_model_version(prefix: str, day: dt.date | None = None) -> str:
    return f"{prefix}-{(day or dt.datetime.now(dt.UTC).date()).isoformat()}"


# ------------------------------------------------------------------------------------------ the suggestion
def suggested_annotation(
    record: Record, suspects: Sequence[Suspect], schema: LabelSchema
) -> tuple[list[str], list[dict[str, Any]]]:
    """The record's topics and spans with each suspect's change applied.

    Applied weakest first, so where two changes conflict (an exclusive topic added, another topic added) the
    strongest suspect has the last word. Changed spans carry their suspect's score; spans never overlap
    (missing-span suspects avoid annotated spans and each other)."""
    labels = list(record.labels)
    spans: dict[tuple[int, int], dict[str, Any]] = {
        (s.start, s.end): {"start": s.start, "end": s.end, "label": s.label} for s in record.entities
    }
    for suspect in sorted(suspects, key=lambda s: s.score):
        if suspect.kind == "topic" and suspect.topic is not None:
            labels = suggested_labels(labels, suspect.topic, suspect.error == "topic_missing", schema)
        elif suspect.kind == "entity" and suspect.span is not None:
            start, end = suspect.span
            if suspect.error == "span_rejected":
                spans.pop((start, end), None)
            elif isinstance(suspect.suggested, SpanAnnotation):
                spans[(start, end)] = {"start": start, "end": end, "label": suspect.suggested.label,
                                       "score": suspect.score}
    return labels, [spans[key] for key in sorted(spans)]


def review_prediction(
    record: Record,
    task_id: int,
    suspects: Sequence[Suspect],
    schema: LabelSchema,
    config: LabelingConfig,
    model_version: str,
) -> dict[str, Any]:
    """One prediction for the task, in the project's labeling-config result format (UTF-16 offsets)."""
    labels, entities = suggested_annotation(record, suspects, schema)
    result = to_label_studio_result(
        record.text,
        labels,
        entities,
        topics_control=config.topics_control,
        entities_control=config.entities_control,
        to_name=config.text_field,
    )
    topic_scores = [s.score for s in suspects if s.kind == "topic"]
    for item in result:
        if item["type"] == "choices" and topic_scores:
            item["score"] = round(max(topic_scores), 4)
    return {
        "task": task_id,
        "model_version": model_version,
        "score": round(max(s.score for s in suspects), 4),
        "result": result,
    }


# ------------------------------------------------------------------------------------ the project's state
def project_task_texts(client: LabelStudio, project_id: int, text_field: str) -> dict[int, str | None]:
    """{task id: its text} for every task of the project."""
    texts: dict[int, str | None] = {}
    for task in client.tasks.list(project=project_id, fields="task_only"):
        value = (task.data or {}).get(text_field)
        texts[int(task.id)] = value if isinstance(value, str) else None
    return texts


def tasks_with_model_version(client: LabelStudio, project_id: int, model_version: str) -> set[int]:
    return {
        int(p.task)
        for p in client.predictions.list(task_project=project_id)
        if p.model_version == model_version and p.task is not None
    }


# ---------------------------------------------------------------------------------------- the saved tab
def review_view_filters(model_version: str) -> dict[str, Any]:
    # LS 1.23 filters predictions_model_versions with `contains` over a list of values (a substring match per
    # value, tasks/managers.py): the date-stamped version matches this run's predictions only
    return {
        "conjunction": "and",
        "items": [{"filter": MODEL_VERSIONS_FILTER, "operator": "contains", "type": "List", "value": [model_version]}],
    }


def _filters_match(data: Mapping[str, Any], model_version: str) -> bool:
    filters = data.get("filters") or {}
    items = filters.get("items") or filters.get("filters") or []
    return len(items) == 1 and any(
        (item.get("filter") or item.get("column")) == MODEL_VERSIONS_FILTER and item.get("value") == [model_version]
        for item in items
    )


def ensure_review_view(client: LabelStudio, project_id: int, title: str, model_version: str) -> tuple[int, bool]:
    """The tab titled `title` (found or created) filtered on `model_version`: (view id, created?)."""
    for view in client.views.list(project=project_id):
        data = dict(view.data or {})
        if data.get("title") != title:
            continue
        if not _filters_match(data, model_version):
            # keep the columns and ordering people set on the tab; only the filter moves on
            kept = {k: v for k, v in data.items() if k not in ("filters", "selectedItems")}
            client.views.update(
                id=str(view.id), project=project_id,
                data={**kept, "title": title, "filters": review_view_filters(model_version)},
            )
        return int(view.id), False
    view = client.views.create(
        project=project_id, data={"title": title, "filters": review_view_filters(model_version)}
    )
    return int(view.id), True


# ------------------------------------------------------------------------------------------------ the push
def _by_record(suspects: Iterable[Suspect]) -> dict[str, list[Suspect]]:
    grouped: dict[str, list[Suspect]] = {}
    for suspect in suspects:
        grouped.setdefault(suspect.record_id, []).append(suspect)
    return grouped


def _why_not(
    record: Record | None, task_id: int | None, texts: Mapping[int, str | None], project_id: int
) -> str | None:
    if record is None:
        return "the record is not in the records file"
    if task_id is None:
        return "the record has no Label Studio task id (meta.ls_task_id)"
    if task_id not in texts:
        return f"task {task_id} is not in project {project_id}"
    if texts[task_id] != record.text:
        return f"task {task_id}'s text is not the record's (records exported from another project?)"
    return None


def push_review(
    client: LabelStudio,
    project_id: int,
    records: Sequence[Record],
    suspects: Sequence[Suspect],
    schema: LabelSchema,
    config: LabelingConfig,
    day: dt.date | None = None,
    chunk_size: int = 500,
) -> ReviewPushOutcome:
    """Predictions for the tasks with suspects (bulk, one request per chunk) and the saved tab."""
    model_version = review_model_version(config.review.model_version_prefix, day)
    texts = project_task_texts(client, project_id, config.text_field)
    done = tasks_with_model_version(client, project_id, model_version)
    by_id = {r.id: r for r in records}
    errors: list[PushError] = []
    fresh: list[dict[str, Any]] = []
    tasks = already = 0
    for record_id, group in _by_record(suspects).items():
        record = by_id.get(record_id)
        task_id = group[0].task_id
        reason = _why_not(record, task_id, texts, project_id)
        if reason is not None:
            errors.append(PushError(record_id, task_id, len(group), reason))
            continue
        assert record is not None and task_id is not None
        tasks += 1
        if task_id in done:
            already += 1
            continue
        fresh.append(review_prediction(record, task_id, group, schema, config, model_version))
    created = 0
    for offset in range(0, len(fresh), chunk_size):
        response = client.projects.import_predictions(id=project_id, request=fresh[offset : offset + chunk_size])
        created += int(getattr(response, "created", None) or 0)
    view_id, view_created = (
        ensure_review_view(client, project_id, config.review.view_title, model_version) if tasks else (None, False)
    )
    log.info("review push project=%s model_version=%s tasks=%d created=%d already=%d errors=%d view=%s",
             project_id, model_version, tasks, created, already, len(errors), view_id)
    return ReviewPushOutcome(project_id, model_version, tasks, created, already, view_id, view_created, errors)
