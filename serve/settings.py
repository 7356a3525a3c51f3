"""The validated HTTP server config (`configs/serve.yaml`); `frontwire serve` flags become overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from frontwire.config import StrictModel, load_config
from frontwire.model_sources import ModelSourcesSection

TASKS = ("classifier", "ner")
Backend = Literal["torch", "onnx", "onnx-int8"]


class ServerSection(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Seconds uvicorn waits for in-flight and queued requests on SIGTERM before it cuts them off.
    graceful_timeout_s: float = Field(default=30.0, gt=0)
    # Requests in progress beyond this get 503 with Retry-After (guards.Admission; probes exempt).
    limit_concurrency: int = Field(ge=1)
    # Open connections beyond this get uvicorn's bare 503 before the app sees them: the last wall of a flood.
    max_connections: int = Field(ge=1)
    log_requests: bool = True

    @model_validator(mode="after")
    def _connections_above_requests(self) -> ServerSection:
        if self.max_connections < self.limit_concurrency:
            raise ValueError(f"max_connections={self.max_connections} is below limit_concurrency="
                             f"{self.limit_concurrency}: requests would get a bare 503 without Retry-After")
        return self


class ModelsSection(ModelSourcesSection):
    backend: Backend = "onnx"
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    # Seconds between checks of the registry alias; a moved alias reloads the models (0 = never check).
    watch_interval_s: float = Field(default=0.0, ge=0)
    warmup: bool = True


class BatchingSection(StrictModel):
    enabled: bool = True
    max_batch_size: int = Field(default=32, ge=1)  # texts per gathered batch
    max_wait_ms: float = Field(default=5.0, ge=0)
    max_queue: int = Field(default=2048, ge=1)  # texts waiting; beyond it requests get 503 (back-pressure)
    # Shedding (defaults only in configs/serve.yaml): a request still queued after max_queue_wait_ms, or not
    # answered within deadline_ms of its arrival, gets 503 with Retry-After: a late answer is worth less to a
    # client than a prompt "try again", and a queue that only grows drowns every request behind it.
    max_queue_wait_ms: float = Field(gt=0)
    deadline_ms: float = Field(gt=0)
    retry_after_s: int = Field(ge=1)
    # Texts per forward pass within a gathered batch, after sorting by length. On CPU, ONNX Runtime is fastest
    # at 4-8 rows (bigger activations fall out of cache, padding grows); torch gains from bigger batches
    # because its per-call overhead is high. None = 8 for ONNX, max_batch_size for torch.
    forward_batch_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _wait_within_deadline(self) -> BatchingSection:
        if self.max_queue_wait_ms > self.deadline_ms:
            raise ValueError(f"max_queue_wait_ms={self.max_queue_wait_ms} is longer than deadline_ms="
                             f"{self.deadline_ms}: the deadline would shed the request first")
        if self.enabled and self.max_queue_wait_ms <= self.max_wait_ms:
            raise ValueError(f"max_queue_wait_ms={self.max_queue_wait_ms} is not longer than max_wait_ms="
                             f"{self.max_wait_ms}: a request waiting for company would be shed on an idle server")
        return self

    def forward_size(self, backend: str) -> int:
        return self.forward_batch_size or (8 if backend.startswith("onnx") else self.max_batch_size)


class LimitsSection(StrictModel):
    max_texts: int = Field(default=64, ge=1)
    max_chars: int = Field(default=5000, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=64)
    max_article_chars: int = Field(default=200_000, ge=1)
    max_paragraphs: int = Field(default=256, ge=1)


class AuthSection(StrictModel):
    token: str | None = None  # prefer token_env: a token in a config file ends up in backups and diffs
    token_env: str = "FRONTWIRE_API_TOKEN"

    def resolved_token(self) -> str | None:
        return self.token or os.environ.get(self.token_env) or None


class LabelStudioSection(StrictModel):
    """Label Studio's ML backend protocol (/health, /setup, /predict, /webhook, ...) on the same server."""

    enabled: bool = False
    max_tasks: int = Field(default=2000, ge=1)  # tasks per /predict call (Label Studio sends a whole selection)
    max_chars: int = Field(default=200_000, ge=1)  # per task text; longer tasks get an error item, not a 413
    # Tasks handed to the batcher at a time: /v1 traffic keeps flowing between the chunks of a big selection.
    chunk_size: int = Field(default=64, ge=1)
    max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)  # /predict and /train carry whole task lists
    retrain: bool = True  # START_TRAINING (and the legacy /train) run `frontwire retrain` in the background
    retrain_args: list[str] = Field(default_factory=list)  # extra `frontwire retrain` options
    retrain_after_annotations: int = Field(default=0, ge=0)  # > 0: also retrain after this many annotation events
    # Where to pull annotations from when /setup did not say (Label Studio sends its hostname and a token there).
    url: str | None = None
    token_env: str = "LABEL_STUDIO_API_KEY"
    keep_jobs: int = Field(default=20, ge=1)  # finished training jobs listed by /training/jobs


class CorsSection(StrictModel):
    allow_origins: list[str] = Field(default_factory=list)  # empty = CORS off


class ServeConfig(StrictModel):
    server: ServerSection = Field(default_factory=ServerSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    batching: BatchingSection = Field(default_factory=BatchingSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    cors: CorsSection = Field(default_factory=CorsSection)
    labelstudio: LabelStudioSection = Field(default_factory=LabelStudioSection)

    @model_validator(mode="after")
    def _queue_holds_a_request(self) -> ServeConfig:
        # A request bigger than the whole queue would be shed every time, whatever the load.
        for name in ("max_texts", "max_paragraphs"):
            if getattr(self.limits, name) > self.batching.max_queue:
                raise ValueError(f"limits.{name}={getattr(self.limits, name)} is more than batching.max_queue="
                                 f"{self.batching.max_queue}: such a request could never be queued")
        return self


def load_serve_config(path: Path | str | None = None, overrides: tuple[str, ...] | list[str] = ()) -> ServeConfig:
    return load_config(ServeConfig, path, "serve.yaml", overrides)
