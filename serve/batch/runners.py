"""Where the model runs: in this process on the backend's threads, or in worker processes.

Both run the same `Predictor.predict` on the same chunks and return results in chunk order, so output does
not depend on the choice. `bench/bench_batch.py throughput` measures both against the raw predictor: on
2 cores they are within noise of each other, and threads are the default because they hold one copy of
the models (processes hold one per worker) and start without spawning interpreters.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

Prediction = dict[str, Any]


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


def release_memory() -> None:
    """Give freed heap back to the OS after a chunk.

    glibc keeps the memory of torch's differently-shaped activations in its arenas: without this, RSS grew
    from 0.7 to 1.2 GB over 6,000 paragraphs (still climbing); with it, it stays flat (bench_batch memory).
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@dataclass(frozen=True)
class PredictorSpec:
    """Everything needed to build the predictor again inside a worker process (picklable)."""

    classifier_dir: Path | None
    ner_dir: Path | None
    device: str = "auto"
    batch_size: int = 32
    backend: str = "auto"
    threads: int | None = None  # intra-op threads of the models (None = the backend's default: all cores)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t, d in (("classifier", self.classifier_dir), ("ner", self.ner_dir)) if d is not None)

    def build(self):
        from frontwire.predictor import Predictor

        # threads go to the predictor, which sets them for whichever backend runs (torch or ONNX Runtime)
        return Predictor(classifier_dir=self.classifier_dir, ner_dir=self.ner_dir, device=self.device,
                         batch_size=self.batch_size, backend=self.backend, threads=self.threads)

    def prepare(self) -> None:
        """Export the ONNX graphs once, here, before worker processes would each race to make them."""
        from frontwire.predictor import resolve_backend

        backend = resolve_backend(self.backend, self.device)
        if backend.startswith("onnx"):
            from frontwire.serve.onnx_backend import export_onnx, precision_for

            for model_dir in (self.classifier_dir, self.ner_dir):
                if model_dir is not None:
                    export_onnx(model_dir, precision_for(backend))


class Runner(Protocol):
    def map(self, jobs: Iterator[tuple[Any, Sequence[str]]]) -> Iterator[tuple[Any, list[Prediction]]]: ...

    def close(self) -> None: ...


class ThreadRunner:
    """One predictor in this process; torch spreads each forward pass over `threads` intra-op threads."""

    def __init__(self, spec: PredictorSpec, threads: int) -> None:
        self.predictor, self.tasks = replace(spec, threads=threads).build(), spec.tasks

    def map(self, jobs: Iterator[tuple[Any, Sequence[str]]]) -> Iterator[tuple[Any, list[Prediction]]]:
        for key, texts in jobs:
            predictions = self.predictor.predict(list(texts), tasks=self.tasks) if texts else []
            release_memory()
            yield key, predictions

    def close(self) -> None:
        self.predictor = None


_WORKER: dict[str, Any] = {}


def _init_worker(spec: PredictorSpec) -> None:
    # one core per process: more threads would only fight over the same cores
    _WORKER["predictor"], _WORKER["tasks"] = replace(spec, threads=1).build(), spec.tasks


def _predict_in_worker(texts: Sequence[str]) -> list[Prediction]:
    predictions = _WORKER["predictor"].predict(list(texts), tasks=_WORKER["tasks"]) if texts else []
    release_memory()
    return predictions


class ProcessRunner:
    """`workers` processes with a single-threaded predictor each.

    At most `2 × workers` chunks are in flight (Executor.map would read the whole input ahead and grow
    without bound); results come back in submission order, so shards stay deterministic.
    """

    def __init__(self, spec: PredictorSpec, workers: int) -> None:
        spec.prepare()
        # spawn, not fork: a forked copy of a process that already holds torch threads can deadlock
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(spec,))
        self.in_flight = 2 * workers

    def map(self, jobs: Iterator[tuple[Any, Sequence[str]]]) -> Iterator[tuple[Any, list[Prediction]]]:
        pending: deque[tuple[Any, Future]] = deque()
        for key, texts in jobs:
            pending.append((key, self.pool.submit(_predict_in_worker, list(texts))))
            if len(pending) >= self.in_flight:
                done_key, future = pending.popleft()
                yield done_key, future.result()
        while pending:
            done_key, future = pending.popleft()
            yield done_key, future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_runner(spec: PredictorSpec, parallelism: str, workers: int) -> Runner:
    if parallelism == "processes" and workers > 1:
        return ProcessRunner(spec, workers)
    return ThreadRunner(spec, workers)
