"""Dynamic batching: concurrent requests gathered into one forward pass, run off the event loop.

One collector task owns the queue. It waits for a first job, then for more until the batch holds
`max_batch_size` texts or the first job has waited `max_wait`; the batch then runs on the single inference
thread while the next one gathers. A job that arrives while a batch runs has waited past its deadline by
the time that batch ends, so it leaves at once: no job waits longer than max_wait plus one batch, unless the
queue itself is deeper than a batch (then `max_queue` bounds it and more requests get 503).

Overload is shed, never queued forever: a request is refused (503 with Retry-After, counted by reason in
`frontwire_shed_total`) when its texts would overfill the queue, when the work queued ahead of it would keep
it waiting longer than `max_queue_wait` (predicted from the measured seconds per text, so under sustained
overload the refusal comes at once instead of after the wait: a client that will be refused is told so while
it can still go elsewhere, and does not hold a connection meanwhile), when its batch has not started after
`max_queue_wait` all the same, or when its predictions are not ready `deadline` after it arrived. A shed job
leaves the queue at once, so the capacity it held goes to requests that can still be answered in time.

With batching off, jobs run one at a time on the same thread: the honest "no batching" baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from frontwire.serve.metrics import ServeMetrics

log = logging.getLogger(__name__)


class Shed(RuntimeError):
    """The request is refused to keep the server answering: the caller answers 503 with Retry-After.

    `reason` is one of metrics.SHED_REASONS (the label of the shed counter)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# Weight of the newest batch in the running estimate of seconds per text: a few batches follow a change of
# load or text length, one odd batch does not swing admission.
COST_SMOOTHING = 0.2


@dataclass
class Job:
    texts: Sequence[str]
    tasks: tuple[str, ...]
    future: asyncio.Future
    started: asyncio.Future  # set when the job's batch is taken off the queue
    enqueued: float = field(default_factory=time.perf_counter)
    abandoned: bool = False  # its request was shed or went away: its result is not wanted


# (model bundle, texts, tasks) -> predictions: the bundle is read once per batch, so a reload swapping it
# mid-batch cannot mix models within one response.
RunFn = Callable[[Any, Sequence[str], tuple[str, ...]], list[dict[str, Any]]]


class Batcher:
    def __init__(self, run: RunFn, current: Callable[[], Any], metrics: ServeMetrics, enabled: bool = True,
                 max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 2048,
                 arriving: Callable[[], int] = lambda: 1, *, max_queue_wait_ms: float, deadline_ms: float) -> None:
        self.run, self.current, self.metrics, self.arriving = run, current, metrics, arriving
        self.enabled, self.max_batch_size, self.max_queue = enabled, max_batch_size, max_queue
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_wait, self.deadline = max_queue_wait_ms / 1000.0, deadline_ms / 1000.0
        self.queue: deque[Job] = deque()
        self.queued_texts = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.seconds_per_text: float | None = None  # measured on the inference thread, batch by batch

    def predicted_wait(self) -> float:
        """Seconds until a job queued now would start: the texts ahead of it at the measured rate (0 before
        the first batch has been timed, so nothing is refused on a guess)."""
        return self.queued_texts * (self.seconds_per_text or 0.0)

    def refuse_early(self) -> Shed | None:
        """A counted Shed when the work queued now would keep a new job waiting past max_queue_wait; it needs no
        body, so the HTTP layer (guards.Admission) asks before reading or validating one."""
        if (predicted := self.predicted_wait()) <= self.max_queue_wait:
            return None
        return self._shed("queue_wait", f"{self.queued_texts} texts queued ahead, about {predicted * 1000:.0f} ms "
                          f"of work (max_queue_wait_ms={self.max_queue_wait * 1000:.0f})")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="batcher")

    def _shed(self, reason: str, message: str) -> Shed:
        self.metrics.shed.labels(reason).inc()
        return Shed(reason, message)

    async def submit(self, texts: Sequence[str], tasks: tuple[str, ...], arrived: float | None = None
                     ) -> tuple[list[dict[str, Any]], Any]:
        """Predictions for `texts` plus the model bundle that made them, or Shed.

        `arrived` (time.perf_counter) is when the request reached the server; the deadline counts from it, so
        time spent reading and validating the body is part of what the client waits. Default: now."""
        if self._stopping:
            raise self._shed("stopping", "server is shutting down")
        if self.queued_texts + len(texts) > self.max_queue:
            raise self._shed("queue_full", f"{self.queued_texts} texts already queued (max_queue={self.max_queue})")
        if (refusal := self.refuse_early()) is not None:
            raise refusal
        loop = asyncio.get_running_loop()
        job = Job(texts, tasks, loop.create_future(), loop.create_future())
        deadline = (job.enqueued if arrived is None else arrived) + self.deadline
        self.queue.append(job)
        self.queued_texts += len(texts)
        self.metrics.queue_depth.set(self.queued_texts)
        self._wakeup.set()
        try:
            # shield: a timeout must not cancel the futures the collector still sets
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(job.started),
                                       min(self.max_queue_wait, deadline - time.perf_counter()))
            if not job.started.done():
                waited = time.perf_counter() - job.enqueued
                if time.perf_counter() >= deadline:
                    raise self._shed("deadline", f"not started within deadline_ms={self.deadline * 1000:.0f}")
                raise self._shed("queue_wait", f"queued {waited * 1000:.0f} ms, max_queue_wait_ms="
                                 f"{self.max_queue_wait * 1000:.0f}")
            try:
                return await asyncio.wait_for(asyncio.shield(job.future), deadline - time.perf_counter())
            except TimeoutError:
                raise self._shed("deadline", f"predictions not ready within deadline_ms="
                                 f"{self.deadline * 1000:.0f}") from None
        except BaseException:  # shed, or the client went away (CancelledError)
            self._abandon(job)
            raise

    def _abandon(self, job: Job) -> None:
        job.abandoned = True
        if not job.started.done():
            self.queue.remove(job)
            self.queued_texts -= len(job.texts)
            self.metrics.queue_depth.set(self.queued_texts)

    async def stop(self) -> None:
        """Finish every queued job, then stop (graceful shutdown)."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self.executor.shutdown(wait=True)

    def _take(self) -> list[Job]:
        jobs = [self.queue.popleft()]
        if self.enabled:
            size = len(jobs[0].texts)
            while self.queue and size + len(self.queue[0].texts) <= self.max_batch_size:
                size += len(self.queue[0].texts)
                jobs.append(self.queue.popleft())
        self.queued_texts -= sum(len(j.texts) for j in jobs)
        self.metrics.queue_depth.set(self.queued_texts)
        for job in jobs:
            job.started.set_result(None)
        return jobs

    async def _gather(self) -> None:
        """Wait until the head job's deadline or a full batch, whichever comes first, but not at all while no
        other request is on its way in (`arriving`): a lone client would pay max_wait for nothing."""
        deadline = self.queue[0].enqueued + self.max_wait
        while self.queued_texts < self.max_batch_size and not self._stopping and self.arriving() > 0:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.enabled and self.max_wait > 0:
                await self._gather()
            if not self.queue:  # every job waiting for company was shed meanwhile
                continue
            jobs = self._take()
            started = time.perf_counter()
            for job in jobs:
                self.metrics.queue_wait.observe(started - job.enqueued)
            try:
                outcome = await loop.run_in_executor(self.executor, self._run_batch, jobs)
            except Exception as err:  # a model failure: every job of the batch gets it, the loop carries on
                log.exception("batch_failed jobs=%d", len(jobs))
                outcome = err
            for job, result in zip(jobs, outcome if isinstance(outcome, list) else [outcome] * len(jobs),
                                   strict=True):
                if job.abandoned or job.future.done():  # shed at its deadline, or the client went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _run_batch(self, jobs: list[Job]) -> list[tuple[list[dict[str, Any]], Any]]:
        """On the inference thread: one model call per distinct task set among the jobs."""
        bundle = self.current()
        results: list[Any] = [None] * len(jobs)
        for tasks in dict.fromkeys(job.tasks for job in jobs):
            members = [i for i, job in enumerate(jobs) if job.tasks == tasks]
            texts = [text for i in members for text in jobs[i].texts]
            started = time.perf_counter()
            predictions = self.run(bundle, texts, tasks)
            elapsed = time.perf_counter() - started
            self.metrics.batch_size.observe(len(texts))
            self.metrics.inference_seconds.observe(elapsed)
            if texts:
                cost = elapsed / len(texts)
                previous = self.seconds_per_text
                self.seconds_per_text = cost if previous is None else previous + COST_SMOOTHING * (cost - previous)
            offset = 0
            for i in members:
                count = len(jobs[i].texts)
                results[i] = (predictions[offset : offset + count], bundle)
                offset += count
        return results
