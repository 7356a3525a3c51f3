"""`frontwire labeling push`: raw articles → paragraph tasks in a Label Studio project, idempotently."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from label_studio_sdk import LabelStudio

from frontwire.documents import Document, content_hash
from frontwire.labeling.client import find_or_create_project, import_in_chunks, iter_task_data
from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.settings import LabelingConfig
from frontwire.schema import LabelSchema

log = logging.getLogger(__name__)


@dataclass
class PushOutcome:
    project_id: int
    created_project: bool
    paragraphs: int
    already_there: int
    duplicates_in_input: int
    imported: int
    task_ids: list[int]


def paragraph_tasks(documents: Iterable[Document], config: LabelingConfig) -> list[dict[str, Any]]:
    """One task per paragraph; chrome paragraphs are kept (they are the boilerplate class)."""
    tasks = []
    for document in documents:
        for paragraph in document.paragraphs():
            data = {
                config.text_field: paragraph.text,
                "paragraph_id": f"{document.id}-p{paragraph.index:03d}",
                "article_id": document.id,
                "content_hash": content_hash(paragraph.text),
            }
            for key in ("source", "published", "headline"):
                if document.meta.get(key) is not None:
                    data[key] = document.meta[key]
            tasks.append({"data": data})
    return tasks


def push_tasks(
    client: LabelStudio,
    tasks: list[dict[str, Any]],
    schema: LabelSchema,
    config: LabelingConfig,
    project_title: str,
    predictions: Mapping[str, Mapping[str, Any]] | None = None,
    chunk_size: int = 500,
    in_project: set[str] | None = None,
) -> PushOutcome:
    """Import the tasks not yet in the project (by content hash), with their pre-annotations if given.

    `predictions` maps paragraph_id → {"model_version", "score", "result"} (Label Studio result items);
    they travel in the import call itself, so pre-annotating N tasks costs N/chunk_size requests.
    `in_project`: the content hashes of the project's tasks when the caller has just listed them.
    """
    project, created = find_or_create_project(client, project_title, label_studio_config(schema, config))
    if in_project is None:
        in_project = {data.get("content_hash") for data in iter_task_data(client, project.id)} - {None}
    seen: set[str] = set()
    fresh: list[dict[str, Any]] = []
    already = duplicates = 0
    for task in tasks:
        key = task["data"]["content_hash"]
        if key in in_project:
            already += 1
            continue
        if key in seen:  # syndicated copy repeated within this push
            duplicates += 1
            continue
        seen.add(key)
        prediction = (predictions or {}).get(task["data"]["paragraph_id"])
        if prediction is not None:
            task = {**task, "predictions": [dict(prediction)]}
        fresh.append(task)
    task_ids = import_in_chunks(client, project.id, fresh, chunk_size) if fresh else []
    log.info("push done project=%s new=%d already_there=%d duplicates=%d", project.id, len(fresh), already, duplicates)
    return PushOutcome(project.id, created, len(tasks), already, duplicates, len(fresh), task_ids)


def load_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """JSONL of {"paragraph_id", "model_version", "score", "result"} lines."""
    predictions: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if "paragraph_id" not in obj or "result" not in obj:
                raise ValueError(f"{path}:{line_no}: a prediction needs 'paragraph_id' and 'result'")
            predictions[str(obj.pop("paragraph_id"))] = obj
    return predictions
