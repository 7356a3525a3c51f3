"""Background retraining for the Label Studio ML backend: a queue of `frontwire retrain` processes.

The reference ML backend trains inside the webhook request, so Label Studio's call times out and the server
stops answering predictions meanwhile. Here a webhook only enqueues a job and returns; one job runs at a time in
its own process (its memory and CPU use end with it, a crash cannot take the server down), its log streams to a
file and its last line is the job's progress; a second request for a project that already has a queued job joins
that job. When a job ends, the server reloads its models if the registry alias moved (Runtime.reload swaps them
without dropping requests in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

State = Literal["queued", "started", "finished", "failed"]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STOP_GRACE_S = 10.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class TrainingJob:
    id: str
    project: int
    reason: str
    url: str
    state: State = "queued"
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    progress: str = ""  # the retrain's latest log or progress-bar line
    returncode: int | None = None
    summary: dict[str, Any] | None = None  # `frontwire retrain --json` output: data delta, metrics, decisions
    error: str | None = None
    log_file: str | None = None
    models_reloaded: bool | None = None
    token: str | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "token"}


class TrainingJobs:
    def __init__(
        self,
        log_dir: Path,
        extra_args: Sequence[str] = (),
        tracking_uri: str | None = None,
        on_finished: Callable[[TrainingJob], Awaitable[bool]] | None = None,
        keep: int = 20,
    ) -> None:
        self.log_dir, self.extra_args, self.tracking_uri = log_dir, list(extra_args), tracking_uri
        self.on_finished, self.keep = on_finished, keep
        self.jobs: dict[str, TrainingJob] = {}
        self._queue: deque[TrainingJob] = deque()
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self._process: asyncio.subprocess.Process | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run_forever(), name="training-jobs")

    async def stop(self) -> None:
        """Server shutdown: the running retrain is terminated (it resumes nothing; a new webhook starts over)."""
        if self._process is not None and self._process.returncode is None:
            log.warning("training_job_terminated reason=server_stopping")
            self._process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), _STOP_GRACE_S)
            if self._process.returncode is None:
                self._process.kill()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def enqueue(self, project: int, url: str, token: str | None, reason: str) -> tuple[TrainingJob, bool]:
        """(job, created): a project with a job still queued gets that job back instead of a second one."""
        for job in self._queue:
            if job.project == project:
                job.url, job.token = url, token or job.token
                return job, False
        job = TrainingJob(uuid.uuid4().hex[:12], project, reason, url, token=token)
        self.jobs[job.id] = job
        self._queue.append(job)
        self._wakeup.set()
        self._forget_old()
        log.info("training_job_queued id=%s project=%d reason=%s", job.id, project, reason)
        return job, True

    def list(self) -> list[dict[str, Any]]:
        return [job.describe() for job in reversed(self.jobs.values())]

    def _forget_old(self) -> None:
        ended = [j for j in self.jobs.values() if j.state in ("finished", "failed")]
        for job in ended[: max(0, len(ended) - self.keep)]:
            del self.jobs[job.id]

    def command(self, job: TrainingJob) -> list[str]:
        args = [sys.executable, "-m", "frontwire", "retrain", "--url", job.url, "--project", str(job.project), "--json"]
        if self.tracking_uri:
            args += ["--tracking-uri", self.tracking_uri]
        return args + self.extra_args

    async def _run_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                job = self._queue.popleft()
                try:
                    await self._run(job)
                except Exception as err:  # a failed job must not stop the queue
                    log.exception("training_job_crashed id=%s", job.id)
                    job.state, job.error, job.finished_at = "failed", f"{type(err).__name__}: {err}", _now()

    async def _run(self, job: TrainingJob) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{job.id}.log"
        job.state, job.started_at, job.log_file = "started", _now(), str(log_path)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if job.token:
            env["LABEL_STUDIO_API_KEY"] = job.token
        log.info("training_job_started id=%s project=%d log=%s", job.id, job.project, log_path)
        self._process = await asyncio.create_subprocess_exec(
            *self.command(job), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        stdout, _ = await asyncio.gather(self._process.stdout.read(), self._follow(job, log_path))  # type: ignore[union-attr]
        job.returncode = await self._process.wait()
        job.finished_at = _now()
        if job.returncode == 0:
            try:
                job.summary = json.loads(stdout.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                job.state, job.error = "failed", f"retrain printed no JSON summary: {err}"
            else:
                # "finished" is published only with the reload's outcome: a poller never sees a half-done job
                await self._reload(job)
                job.state = "finished"
        else:
            job.state = "failed"
            job.error = f"retrain exited with {job.returncode}: {job.progress or 'no output'} (log: {log_path})"
        log.info("training_job_%s id=%s project=%d returncode=%s", job.state, job.id, job.project, job.returncode)

    async def _reload(self, job: TrainingJob) -> None:
        if self.on_finished is None:
            return
        try:
            job.models_reloaded = await self.on_finished(job)
        except Exception as err:  # the old models keep serving
            job.models_reloaded = False
            job.error = f"retrained, but reloading the models failed: {err}"
            log.warning("training_job_reload_failed id=%s error=%s", job.id, err)

    async def _follow(self, job: TrainingJob, log_path: Path) -> None:
        """Copy the retrain's stderr to its log; tqdm redraws with \\r, so \\r ends a progress line too."""
        assert self._process is not None and self._process.stderr is not None
        with log_path.open("w", encoding="utf-8") as out:
            pending = ""
            while chunk := await self._process.stderr.read(4096):
                text = chunk.decode("utf-8", errors="replace")
                out.write(text)
                out.flush()
                pending += text
                *lines, pending = re.split(r"[\r\n]", pending)
                shown = [_ANSI.sub("", line).strip() for line in lines]
                shown = [line for line in shown if line]
                if shown:
                    job.progress = shown[-1][-300:]
