"""Everything between the socket and a route: body size limit, JSON parsing, auth, error bodies, metrics.

Bad input must never reach a code path that can answer 500, so the body is read, size-checked, decoded as
strict UTF-8 and parsed here, before FastAPI sees it; every failure becomes a 4xx whose message names what
was wrong. Errors never echo the input back (a 1 MB bad body must not come back as a 1 MB error).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontwire.serve.metrics import ServeMetrics
from frontwire.serve.schemas import AUTH_PREFIXES, UNLIMITED_PATHS

log = logging.getLogger("frontwire.serve.http")

MAX_REPORTED_ERRORS = 20


def error_body(status: int, detail: str, errors: list[dict[str, str]] | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    content: dict[str, Any] = {"detail": detail}
    if errors:
        content["errors"] = errors
    return JSONResponse(content, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: reads the whole body (at most `limit` bytes, or the path's own limit in `per_path`)
    before the app runs, else answers 413."""

    def __init__(self, app: ASGIApp, limit: int, per_path: dict[str, int] | None = None) -> None:
        self.app, self.default_limit, self.per_path = app, limit, per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope["path"], self.default_limit)

        def too_large() -> JSONResponse:
            return error_body(413, f"request body is larger than max_body_bytes={limit}")

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await too_large()(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away mid-body
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await too_large()(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


BATCHED_PATHS = ("/v1/predict", "/v1/articles")


class Admission:
    """ASGI middleware: refuse at once, before the body is read, what the server would refuse later anyway —
    503 with Retry-After, counted by reason:

    - `concurrency`: more than `limit` requests in progress (probes and /metrics exempt);
    - `queue_wait`: a prediction request while the work already queued would keep it waiting past
      max_queue_wait (the batcher's own estimate, `Batcher.refuse_early`). Under sustained overload most
      requests are refused, and reading, parsing and validating their bodies first would take the CPU the
      accepted ones need.

    uvicorn's own limit answers a bare 503 without Retry-After and uncounted; this one keeps every refusal
    inside the contract, and uvicorn's (server.max_connections) sits above it for floods the app never sees.
    """

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int, metrics: ServeMetrics) -> None:
        self.app, self.limit, self.retry_after, self.metrics = app, limit, str(retry_after_s), metrics
        self.in_progress = 0

    def _busy(self, reason: str, detail: str) -> JSONResponse:
        return error_body(503, f"server busy ({reason}): {detail}", headers={"Retry-After": self.retry_after})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            return await self.app(scope, receive, send)
        if self.in_progress >= self.limit:
            self.metrics.shed.labels("concurrency").inc()
            busy = self._busy("concurrency", f"{self.in_progress} requests in progress "
                              f"(server.limit_concurrency={self.limit})")
            return await busy(scope, receive, send)
        batcher = getattr(scope["app"].state, "batcher", None)  # set once the lifespan has started
        predicting = batcher is not None and scope["method"] == "POST" and scope["path"] in BATCHED_PATHS
        if predicting and (refusal := batcher.refuse_early()) is not None:
            return await self._busy(refusal.reason, str(refusal))(scope, receive, send)
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


ARRIVING = "frontwire.arriving"
ARRIVED = "frontwire.arrived"  # time.perf_counter() when the request came in: the deadline counts from it


class Arrivals:
    """Prediction requests received but not yet queued for the model (still reading or validating).

    The batcher waits for company only while this is above zero; `left` is called once per request, by the
    route when it queues its texts or by the middleware when the request ends without doing so.
    """

    def __init__(self) -> None:
        self.count = 0

    def came(self, scope: Scope) -> None:
        if scope["method"] == "POST" and scope["path"] in BATCHED_PATHS:
            scope[ARRIVING] = True
            self.count += 1

    def left(self, scope: Scope) -> None:
        if scope.pop(ARRIVING, False):
            self.count -= 1


class Telemetry:
    """ASGI middleware: request counters, latency histogram, error counters and one log line per request."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, arrivals: Arrivals, log_requests: bool = True) -> None:
        self.app, self.metrics, self.arrivals, self.log_requests = app, metrics, arrivals, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = scope[ARRIVED] = time.perf_counter()
        # No response at all means the client left before its body arrived: nginx's 499, not a server fault.
        status = 499

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.arrivals.came(scope)
        try:
            await self.app(scope, receive, record_status)
        except BaseException:
            status = 500
            raise
        finally:
            self.arrivals.left(scope)
            elapsed = time.perf_counter() - started
            # The route template, not the raw path: raw paths would make one time series per scanner probe.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if status >= 400:
                self.metrics.errors.labels(route, str(status)).inc()
            if self.log_requests:
                log.info("request method=%s route=%s status=%d ms=%.1f", scope["method"], route, status,
                         elapsed * 1000)


def token_matches(given: str, expected: str) -> bool:
    # compare_digest: the time taken does not reveal how many leading characters matched.
    return hmac.compare_digest(given.encode(), expected.encode())


def check_token(request: Request) -> None:
    expected: str | None = request.app.state.token
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(given.strip(), expected):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


class GuardedRoute(APIRoute):
    """Auth first (before any parsing), then the body as strict UTF-8 JSON; failures are 401/415/422."""

    # A router may set its own check (Label Studio's backend routes accept basic auth); by default the bearer
    # token guards /v1/ and /admin/.
    authorize: Callable[[Request], None] | None = None

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        check = self.authorize or (check_token if self.path.startswith(AUTH_PREFIXES) else None)

        async def guarded(request: Request) -> Response:
            if check is not None:
                check(request)
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()
                content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
                if body and content_type != "application/json" and not content_type.endswith("+json"):
                    return error_body(415, f"content-type must be application/json, not {content_type!r}")
                if body:
                    try:
                        parsed = json.loads(body.decode("utf-8"))
                    except UnicodeDecodeError as err:
                        return error_body(422, f"request body is not valid UTF-8 (byte {err.start})")
                    except json.JSONDecodeError as err:
                        return error_body(422, f"request body is not valid JSON: {err.msg} at character {err.pos}")
                    except (ValueError, RecursionError) as err:  # too-deep nesting, over-long integers
                        return error_body(422, f"request body is not acceptable JSON: {type(err).__name__}")
                    # Starlette caches the parsed body here; FastAPI's own request.json() then reuses it.
                    request._json = parsed
            return await handler(request)

        return guarded


def _where(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for error in exc.errors()[:MAX_REPORTED_ERRORS]:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        errors.append({"loc": _where(tuple(error.get("loc", ()))), "msg": message})
    detail = "; ".join(f"{e['loc']}: {e['msg']}" if not e["msg"].startswith(e["loc"]) else e["msg"]
                       for e in errors[:5])
    return error_body(422, detail or "invalid request", errors)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error path=%s", request.url.path)
    return error_body(500, "internal error (logged on the server)")
