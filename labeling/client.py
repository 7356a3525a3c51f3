"""Thin helpers over label-studio-sdk's own client (SDK 2.x): connect, export, create projects, import."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from label_studio_sdk import LabelStudio

log = logging.getLogger(__name__)

URL_ENV = "LABEL_STUDIO_URL"
TOKEN_ENVS = ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_TOKEN")


class LabelStudioError(RuntimeError):
    pass


def connect(url: str | None = None, token: str | None = None, timeout: float = 120.0) -> LabelStudio:
    url = url or os.environ.get(URL_ENV)
    token = token or next((os.environ[name] for name in TOKEN_ENVS if os.environ.get(name)), None)
    if not url:
        raise LabelStudioError(f"no Label Studio URL: pass --url or set {URL_ENV}")
    if not token:
        raise LabelStudioError(f"no Label Studio API token: set {' or '.join(TOKEN_ENVS)}")
    return LabelStudio(base_url=url.rstrip("/"), api_key=token, timeout=timeout)


def export_tasks(client: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    """The project's full JSON export (all tasks, also unlabeled ones), as the browser's export would give."""
    chunks = client.projects.exports.download_sync(id=project_id, export_type="JSON", download_all_tasks=True)
    payload = b"".join(chunks)
    try:
        tasks = json.loads(payload)
    except json.JSONDecodeError as err:
        raise LabelStudioError(f"project {project_id}: export is not JSON: {err}") from err
    if not isinstance(tasks, list):
        raise LabelStudioError(f"project {project_id}: export is not a list of tasks")
    return tasks


def find_project(client: LabelStudio, title: str) -> Any | None:
    for project in client.projects.list():
        if project.title == title:
            return project
    return None


def find_or_create_project(client: LabelStudio, title: str, label_config: str) -> tuple[Any, bool]:
    project = find_project(client, title)
    if project is not None:
        if _normalise_xml(project.label_config or "") != _normalise_xml(label_config):
            log.warning(
                "project %r (id %s) has a labeling config that differs from the schema's; updating it",
                title,
                project.id,
            )
            project = client.projects.update(id=project.id, label_config=label_config)
        return project, False
    return client.projects.create(title=title, label_config=label_config), True


def iter_task_data(client: LabelStudio, project_id: int) -> Iterator[dict[str, Any]]:
    for task in client.tasks.list(project=project_id, fields="all"):
        yield dict(task.data or {})


def import_in_chunks(
    client: LabelStudio, project_id: int, tasks: Sequence[dict[str, Any]], chunk_size: int
) -> list[int]:
    """Tasks (with their optional predictions) in bulk: one HTTP call per chunk, never one per task."""
    task_ids: list[int] = []
    for offset in range(0, len(tasks), chunk_size):
        chunk = list(tasks[offset : offset + chunk_size])
        response = client.projects.import_tasks(id=project_id, request=chunk, return_task_ids=True)
        ids = list(getattr(response, "task_ids", None) or [])
        task_ids.extend(ids)
        log.info("imported chunk project=%s tasks=%d offset=%d", project_id, len(chunk), offset)
    return task_ids


def _normalise_xml(xml: str) -> str:
    return "".join(xml.split())
