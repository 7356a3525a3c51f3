"""The FastAPI app: prediction, articles, health, readiness, metrics, model info and reload.

Routes only check limits and shape responses; batching, model swaps and parsing guards live in their own
modules (batcher.py, runtime.py, guards.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from lxml import etree
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from frontwire.model_sources import ModelSourceError
from frontwire.paragraphs import html_to_text, split_text
from frontwire.serve import schemas as s
from frontwire.serve.batcher import Batcher, Shed
from frontwire.serve.guards import (
    ARRIVED,
    Admission,
    Arrivals,
    BodyLimit,
    GuardedRoute,
    Telemetry,
    unexpected_error,
    validation_error,
)
from frontwire.serve.metrics import ServeMetrics
from frontwire.serve.runtime import Bundle, Runtime, predict
from frontwire.serve.settings import ServeConfig
from frontwire.serve.ui import router as ui_router

log = logging.getLogger(__name__)

# Auth is checked in GuardedRoute before the body is parsed; schemas.contract declares it (and 401) in OpenAPI
# only when a token is set, since only then is it enforced.
BUSY = {"model": s.ErrorResponse, "headers": s.RETRY_AFTER,
        "description": "Shed: models warming up, queue full, queued too long, past the deadline or too many "
                       "requests in progress."}
BODY_ERRORS = {413: {"model": s.ErrorResponse, "description": "Over a size limit (the limit is named)."},
               415: {"model": s.ErrorResponse, "description": "Body is not application/json."},
               422: {"model": s.ErrorResponse, "description": "Body is not valid for this operation."}}
router = APIRouter(route_class=GuardedRoute)
api = APIRouter(route_class=GuardedRoute)


def _state(request: Request) -> tuple[ServeConfig, Runtime, Batcher]:
    state = request.app.state
    return state.config, state.runtime, state.batcher


def _tasks(wanted: list[str] | None, bundle: Bundle) -> tuple[str, ...]:
    if wanted is None:
        return bundle.tasks
    missing = [task for task in wanted if task not in bundle.tasks]
    if missing:
        raise HTTPException(422, f"tasks {missing} are not served here; loaded: {list(bundle.tasks)}")
    return tuple(task for task in bundle.tasks if task in wanted)  # one order: equal task sets batch together


async def _run(request: Request, texts: list[str], wanted: list[str] | None) -> tuple[list[dict[str, Any]], Bundle]:
    config, runtime, batcher = _state(request)
    retry = {"Retry-After": str(config.batching.retry_after_s)}
    if not runtime.ready:
        request.app.state.metrics.shed.labels("warming_up").inc()
        raise HTTPException(503, "models are still warming up", headers=retry)
    tasks = _tasks(wanted, runtime.bundle)
    request.app.state.arrivals.left(request.scope)
    try:
        predictions, bundle = await batcher.submit(texts, tasks, request.scope.get(ARRIVED))
    except Shed as err:
        raise HTTPException(503, f"server busy ({err.reason}): {err}", headers=retry) from err
    request.app.state.metrics.texts.labels(request.url.path).inc(len(texts))
    return predictions, bundle


def _models(bundle: Bundle, tasks: list[str] | None) -> dict[str, Any]:
    return {kind: value for kind, value in bundle.models().items() if tasks is None or kind in tasks}


@router.get("/healthz", tags=["ops"], summary="Liveness: the process answers.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], summary="Readiness: models loaded and warmed.",
            responses={503: {"model": s.ErrorResponse}})
async def readyz(request: Request) -> JSONResponse:
    _, runtime, _ = _state(request)
    if not runtime.ready:
        return JSONResponse({"status": "warming", "detail": "models are still warming up"}, status_code=503)
    return JSONResponse({"status": "ready", "reloading": runtime.reloading, "models": runtime.bundle.models()})


@router.get("/metrics", tags=["ops"], summary="Prometheus metrics.", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@api.get("/v1/models", tags=["models"], summary="Loaded models: versions, label schema, thresholds.")
async def models(request: Request) -> dict[str, Any]:
    _, runtime, _ = _state(request)
    bundle = runtime.bundle
    described: dict[str, Any] = {}
    for kind, info in bundle.models().items():
        model = bundle.predictor.topics if kind == "classifier" else bundle.predictor.ner
        meta = model.meta
        described[kind] = {**info, "kind": meta.kind, "trained_name": meta.name, "labels": meta.labels,
                           "schema": {"name": meta.schema_.name, "version": meta.schema_.version},
                           "max_length": meta.max_length, "stride": meta.stride, "created_at": meta.created_at}
        if kind == "classifier":
            described[kind].update(thresholds=model.thresholds, exclusive=meta.schema_.exclusive_topics)
        else:
            # the colours Label Studio's labeling config uses, so the page shows a type as annotators saw it
            described[kind].update(entity_types=meta.schema_.entity_names,
                                   entity_colours=meta.schema_.entity_colours)
    return {"models": described, "loaded_at": bundle.loaded_at}


# Responses are built as plain dicts and sent as they are: the response models document them in OpenAPI, and
# re-validating every prediction on the way out would cost as much as decoding it.
@api.post("/v1/predict", tags=["predict"], responses={200: {"model": s.PredictResponse}, **BODY_ERRORS, 503: BUSY},
          summary="Topic labels and entities for paragraphs, one prediction per text, in order.")
async def predict_texts(request: Request, body: Annotated[s.PredictRequest, Body(openapi_examples={
        "both models": {"value": {"texts": s.EXAMPLE_TEXTS}},
        "entities only": {"value": {"texts": s.EXAMPLE_TEXTS[:1], "tasks": ["ner"]}}})]) -> JSONResponse:
    limits = request.app.state.config.limits
    if len(body.texts) > limits.max_texts:
        raise HTTPException(413, f"texts holds {len(body.texts)} items; max_texts={limits.max_texts}")
    for index, text in enumerate(body.texts):
        if len(text) > limits.max_chars:
            raise HTTPException(413, f"texts[{index}] has {len(text)} characters; max_chars={limits.max_chars}")
    predictions, bundle = await _run(request, body.texts, body.tasks)
    return JSONResponse({"predictions": predictions, "models": _models(bundle, body.tasks)})


@api.post("/v1/articles", tags=["predict"], responses={200: {"model": s.ArticleResponse}, **BODY_ERRORS, 503: BUSY},
          summary="An article (text or HTML) split into paragraphs, each with its offsets and predictions.")
async def predict_article(request: Request, body: s.ArticleRequest) -> JSONResponse:
    limits = request.app.state.config.limits
    raw = body.text if body.text is not None else body.html or ""
    if len(raw) > limits.max_article_chars:
        raise HTTPException(413, f"article has {len(raw)} characters; max_article_chars={limits.max_article_chars}")
    text = raw
    if body.html is not None:
        try:  # off the event loop: a big page takes tens of milliseconds to parse
            text = await asyncio.to_thread(html_to_text, body.html)
        except (ValueError, RecursionError, etree.LxmlError) as err:
            raise HTTPException(422, f"html could not be parsed: {type(err).__name__}") from err
    # An article with no text (a page of markup only) is a valid request with an empty answer, not an error.
    paragraphs = split_text(text)
    if len(paragraphs) > limits.max_paragraphs:
        raise HTTPException(413, f"article has {len(paragraphs)} paragraphs; max_paragraphs={limits.max_paragraphs}")
    predictions, bundle = (await _run(request, [p.text for p in paragraphs], body.tasks) if paragraphs
                           else ([], request.app.state.runtime.bundle))
    answer: dict[str, Any] = {"id": body.id, "models": _models(bundle, body.tasks)}
    if body.html is not None:
        answer["text"] = text
    answer["paragraphs"] = [{"index": p.index, "start": p.start, "end": p.end, "text": p.text, **prediction}
                            for p, prediction in zip(paragraphs, predictions, strict=True)]
    return JSONResponse(answer)


@api.post("/admin/reload", tags=["admin"], response_model=s.ReloadResponse,
          responses={**BODY_ERRORS, 409: {"model": s.ErrorResponse, "description": "A reload is already running."}},
          summary="Load models again (new alias target or given sources) and swap them in atomically.")
async def reload(request: Request, body: s.ReloadRequest | None = None) -> dict[str, Any]:
    _, runtime, _ = _state(request)
    if request.app.state.token is None:
        raise HTTPException(403, "reload needs a bearer token configured (auth.token_env)")
    if runtime.reloading:
        raise HTTPException(409, "a reload is already running")
    try:
        bundle, changed = await runtime.reload(body.classifier if body else None, body.ner if body else None)
    except ModelSourceError as err:
        raise HTTPException(422, str(err)) from err
    request.app.openapi_schema = None  # the loaded tasks are part of the contract
    return {"changed": changed, "models": bundle.models()}


def training_jobs(config: ServeConfig, runtime: Runtime):
    """Label Studio's Train button runs `frontwire retrain` against the store the server loads from."""
    from frontwire.paths import default_tracking_uri, work_dir
    from frontwire.serve.training_jobs import TrainingJob, TrainingJobs

    async def reload_if_promoted(job: TrainingJob) -> bool:
        _, changed = await runtime.reload(only_if_changed=True)
        return changed

    return TrainingJobs(work_dir() / "labelstudio-jobs", config.labelstudio.retrain_args,
                        config.models.tracking_uri or default_tracking_uri(), reload_if_promoted,
                        config.labelstudio.keep_jobs)


def create_app(config: ServeConfig, bundle: Bundle, token: str | None = None) -> FastAPI:
    metrics = ServeMetrics()
    arrivals = Arrivals()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(config.models, bundle, metrics, config.batching.forward_size(config.models.backend))
        batching = config.batching
        batcher = Batcher(predict, lambda: runtime.bundle, metrics, batching.enabled, batching.max_batch_size,
                          batching.max_wait_ms, batching.max_queue, arriving=lambda: arrivals.count,
                          max_queue_wait_ms=batching.max_queue_wait_ms, deadline_ms=batching.deadline_ms)
        app.state.runtime, app.state.batcher = runtime, batcher
        batcher.start()
        if config.labelstudio.enabled:
            app.state.training_jobs = training_jobs(config, runtime)
            app.state.training_jobs.start()
        background = [asyncio.create_task(runtime.warm_up(), name="warm-up")]
        if config.models.watch_interval_s > 0:
            background.append(asyncio.create_task(runtime.watch(config.models.watch_interval_s), name="watch"))
        try:
            yield
        finally:
            # uvicorn has already waited for open requests; whatever is still queued is finished here.
            for task in background:
                task.cancel()
            await batcher.stop()
            if config.labelstudio.enabled:
                await app.state.training_jobs.stop()
            log.info("server_stopped")

    app = FastAPI(title="frontwire", version="1", lifespan=lifespan, strict_content_type=False,
                  description="Topic labels and named entities for war-news paragraphs.")
    app.state.config, app.state.metrics, app.state.token, app.state.arrivals = config, metrics, token, arrivals
    app.include_router(router)
    app.include_router(api)
    app.include_router(ui_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            limits = config.limits
            tasks = list(app.state.runtime.bundle.tasks) if hasattr(app.state, "runtime") else list(bundle.tasks)
            app.openapi_schema = s.contract(FastAPI.openapi(app), limits.max_texts, limits.max_chars,
                                            limits.max_article_chars, tasks, token is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    body_limits = {}
    if config.labelstudio.enabled:
        from frontwire.serve.labelstudio import router as labelstudio_router

        app.include_router(labelstudio_router)
        app.state.ls_projects, app.state.ls_annotation_events = {}, {}
        app.state.ls_token = os.environ.get(config.labelstudio.token_env) or None
        body_limits = {path: config.labelstudio.max_body_bytes for path in ("/predict", "/train", "/webhook")}
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
    if config.cors.allow_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors.allow_origins, allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type"])
    app.add_middleware(BodyLimit, limit=config.limits.max_body_bytes, per_path=body_limits)
    app.add_middleware(Admission, limit=config.server.limit_concurrency,
                       retry_after_s=config.batching.retry_after_s, metrics=metrics)
    app.add_middleware(Telemetry, metrics=metrics, arrivals=arrivals, log_requests=config.server.log_requests)
    return app
