"""Label Studio's ML backend protocol on the prediction server (`frontwire serve --labelstudio`).

Shapes follow Label Studio 1.23 (label_studio/ml/api_connector.py and ml/models.py), which calls:
GET /health → {"status": "UP"}; POST /setup {project: "<id>.<created ts>", schema, hostname, access_token} →
{"model_version"}; POST /predict {tasks, project, label_config, params} → {"results": [one prediction per task,
in order]}; POST /webhook {"action": "START_TRAINING", "project": {...}} (the Train button) → {"job"}; POST
/job_status {"job"} → {"job_status"}; GET /versions. The legacy POST /train (older servers) is accepted too.

Predictions come from the same batcher and predictor as /v1/predict; the result names the project's own controls
and label values (frontwire.labeling.ls_controls), entity offsets are UTF-16 code units as the editor counts them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from frontwire.labeling.ls_controls import LabelConfigError
from frontwire.serve.batcher import Shed
from frontwire.serve.guards import GuardedRoute, token_matches
from frontwire.serve.ls_tasks import project_controls, project_id, task_result, task_text

log = logging.getLogger(__name__)

ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")


def check_backend_auth(request: Request) -> None:
    """Label Studio can only send HTTP Basic auth to an ML backend: the password must be the server's token."""
    expected: str | None = request.app.state.token
    if expected is None:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = ""
    elif scheme.lower() != "bearer":
        given = ""
    if not token_matches(given, expected):
        raise HTTPException(
            401,
            "missing or invalid credentials (basic auth password = the server token)",
            headers={"WWW-Authenticate": 'Basic realm="frontwire"'},
        )


class BackendRoute(GuardedRoute):
    """Credentials are checked before a (possibly 64 MB) body is read and parsed, as on /v1/."""

    authorize = staticmethod(check_backend_auth)


router = APIRouter(route_class=BackendRoute, tags=["label studio"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")  # Label Studio adds fields between releases


class SetupRequest(_Body):
    project: str | int
    label_config: str = Field(alias="schema")
    hostname: str | None = None
    access_token: str | None = None


class PredictRequest(_Body):
    tasks: list[dict[str, Any]]
    project: str | int | None = None
    label_config: str | None = None


class WebhookRequest(_Body):
    action: str
    project: dict[str, Any] | str | int | None = None


class JobStatusRequest(_Body):
    job: str


@dataclass
class ProjectLink:
    hostname: str | None
    token: str | None
    label_config: str | None


@router.get("/health", summary="Label Studio's backend check: UP once the models are loaded and warmed.")
async def health(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    if not runtime.ready:
        return JSONResponse({"status": "WARMING", "model_class": "frontwire"}, status_code=503)
    return JSONResponse({"status": "UP", "model_class": "frontwire", "model_version": runtime.bundle.model_version})


@router.post("/setup", summary="Label Studio connects a project: check its config fits, answer the model version.")
async def setup(request: Request, body: SetupRequest) -> dict[str, Any]:
    runtime = request.app.state.runtime
    try:
        project_controls(body.label_config, *_schema_names(runtime.bundle.predictor))
    except LabelConfigError as err:
        raise HTTPException(422, str(err)) from err
    pid = project_id(body.project)
    if pid is not None:
        request.app.state.ls_projects[pid] = ProjectLink(body.hostname, body.access_token, body.label_config)
    return {"model_version": runtime.bundle.model_version}


def _schema_names(predictor: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    topics = tuple(predictor.topics.meta.labels) if predictor.topics is not None else ()
    entities = tuple(predictor.ner.meta.schema_.entity_names) if predictor.ner is not None else ()
    return topics, entities


@router.post("/predict", summary="Pre-annotations for a list of tasks: one prediction per task, in order.")
async def predict(request: Request, body: PredictRequest) -> JSONResponse:
    state = request.app.state
    settings, runtime = state.config.labelstudio, state.runtime
    if not runtime.ready:
        raise HTTPException(503, "models are still warming up", headers={"Retry-After": "2"})
    if len(body.tasks) > settings.max_tasks:
        raise HTTPException(413, f"tasks holds {len(body.tasks)} items; labelstudio.max_tasks={settings.max_tasks}")
    pid = project_id(body.project)
    label_config = body.label_config or (state.ls_projects[pid].label_config if pid in state.ls_projects else None)
    if not label_config:
        raise HTTPException(422, "no label_config in the request and none known from /setup for this project")
    bundle = runtime.bundle
    try:
        controls = project_controls(label_config, *_schema_names(bundle.predictor))
    except LabelConfigError as err:
        raise HTTPException(422, str(err)) from err
    wanted = tuple(
        kind
        for kind, control in (("classifier", controls.topics), ("ner", controls.entities))
        if control is not None and kind in bundle.tasks
    )
    texts: dict[int, str] = {}
    errors: list[dict[str, Any]] = []
    for index, task in enumerate(body.tasks):
        try:
            texts[index] = task_text(task, controls.data_keys, settings.max_chars)
        except ValueError as err:
            errors.append({"task": task.get("id"), "index": index, "reason": str(err)})
            log.warning("labelstudio_task_skipped task=%s index=%d reason=%s", task.get("id"), index, err)
    results: list[dict[str, Any]] = [
        {"result": [], "score": 0.0, "model_version": bundle.model_version} for _ in body.tasks
    ]
    order = list(texts)
    for start in range(0, len(order), settings.chunk_size):
        chunk = order[start : start + settings.chunk_size]
        try:
            predictions, used = await state.batcher.submit([texts[i] for i in chunk], wanted)
        except Shed as err:
            retry = str(state.config.batching.retry_after_s)
            raise HTTPException(503, f"server busy ({err.reason}): {err}", headers={"Retry-After": retry}) from err
        thresholds = used.predictor.topics.thresholds if used.predictor.topics is not None else {}
        for index, prediction in zip(chunk, predictions, strict=True):
            items, score = task_result(texts[index], prediction, controls, thresholds)
            results[index] = {"result": items, "score": score, "model_version": used.model_version}
    state.metrics.texts.labels("/predict").inc(len(texts))
    answer: dict[str, Any] = {"results": results, "model_version": bundle.model_version}
    if errors:
        answer["errors"] = errors
    return JSONResponse(answer)


def _enqueue(request: Request, pid: int | None, reason: str) -> dict[str, Any]:
    state = request.app.state
    settings = state.config.labelstudio
    if not settings.retrain:
        return {"status": "ignored", "detail": "labelstudio.retrain is off"}
    if pid is None:
        raise HTTPException(422, "the event names no project id")
    link = state.ls_projects.get(pid)
    url = settings.url or (link.hostname if link else None)
    token = (link.token if link and not settings.url else None) or state.ls_token
    if not url:
        raise HTTPException(
            409,
            f"project {pid} never called /setup and labelstudio.url is not set: "
            "no Label Studio to pull annotations from",
        )
    job, created = state.training_jobs.enqueue(pid, url.rstrip("/"), token, reason)
    return {"status": "queued" if created else "already queued", "job": job.id}


@router.post("/webhook", summary="Label Studio events: START_TRAINING queues a background retrain and returns.")
async def webhook(request: Request, body: WebhookRequest) -> JSONResponse:
    state = request.app.state
    pid = project_id(body.project)
    if body.action == "START_TRAINING":
        return JSONResponse(_enqueue(request, pid, "START_TRAINING"), status_code=201)
    every = state.config.labelstudio.retrain_after_annotations
    if body.action in ANNOTATION_EVENTS and every > 0 and pid is not None:
        state.ls_annotation_events[pid] = state.ls_annotation_events.get(pid, 0) + 1
        if state.ls_annotation_events[pid] >= every:
            state.ls_annotation_events[pid] = 0
            return JSONResponse(_enqueue(request, pid, f"{every} annotation events"), status_code=201)
        return JSONResponse({"status": "counted", "events": state.ls_annotation_events[pid], "retrain_at": every})
    return JSONResponse({"status": "ignored", "action": body.action})


@router.post("/train", summary="Legacy training call of older Label Studio servers: queued like START_TRAINING.")
async def train(request: Request, body: _Body) -> JSONResponse:
    return JSONResponse(_enqueue(request, project_id(getattr(body, "project", None)), "train"), status_code=201)


@router.post("/job_status", summary="A training job's state as Label Studio polls it.")
async def job_status(request: Request, body: JobStatusRequest) -> JSONResponse:
    job = request.app.state.training_jobs.jobs.get(body.job)
    if job is None:
        return JSONResponse({"error": f"no training job {body.job!r}"}, status_code=410)
    return JSONResponse({"job_status": job.state, **job.describe()})


@router.get("/training/jobs", summary="Training jobs, newest first: state, progress line, summary, log file.")
async def training_jobs(request: Request) -> dict[str, Any]:
    return {"jobs": request.app.state.training_jobs.list()}


@router.get("/versions", summary="Model versions this backend can answer with.")
async def versions(request: Request) -> dict[str, Any]:
    return {"versions": [request.app.state.runtime.bundle.model_version]}
