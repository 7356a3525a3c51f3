"""What the server runs on: the loaded models (a bundle), warm-up, atomic reload, and the registry watcher.

A bundle is immutable once built. Reload builds a new one off the event loop, warms it, then swaps one
reference; a batch already running keeps the bundle it started with, so nothing in flight is dropped or
answered by a mix of two models.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from frontwire.model_sources import ModelRef, ModelSourceError
from frontwire.predictor import Predictor
from frontwire.serve.metrics import ServeMetrics
from frontwire.serve.settings import TASKS, ModelsSection

log = logging.getLogger(__name__)

WARMUP_TEXTS = (
    "Kyiv",
    "Russian forces shelled Kharkiv overnight, the regional governor said on Telegram.",
    "EU foreign ministers agreed a new package of sanctions on Moscow on Monday. " * 20,  # > one window
)


@dataclass(frozen=True)
class Bundle:
    predictor: Predictor
    refs: dict[str, ModelRef]
    backend: str
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(task for task in TASKS if task in self.refs)

    def models(self) -> dict[str, dict[str, Any]]:
        return {kind: {**ref.describe(), "backend": self.backend} for kind, ref in self.refs.items()}

    @property
    def model_version(self) -> str:
        """One string for both models, e.g. "frontwire-classifier:v3+frontwire-ner:v2" (as `labeling suggest`)."""
        return "+".join(f"{ref.name}:v{ref.version}" if ref.version else ref.name for ref in self.refs.values())

    def versions(self) -> dict[str, tuple[str, str | None]]:
        return {kind: (ref.name, ref.version) for kind, ref in self.refs.items()}


def resolve_refs(config: ModelsSection, classifier: str | None = None, ner: str | None = None) -> dict[str, ModelRef]:
    """Both models' sources resolved (a source given here overrides the configured one)."""
    refs: dict[str, ModelRef] = {}
    for kind, source in (("classifier", classifier), ("ner", ner)):
        ref = config.resolve(kind, source)
        if ref is not None:
            refs[kind] = ref
    if not refs:
        raise ModelSourceError(
            f"no model to serve: neither {config.registered_classifier!r} nor {config.registered_ner!r} is "
            "registered in the tracking store, and no --classifier/--ner source was given")
    return refs


def load_bundle(config: ModelsSection, refs: dict[str, ModelRef], batch_size: int = 32) -> Bundle:
    started = time.perf_counter()
    try:
        predictor = Predictor(classifier_dir=refs["classifier"].model_dir if "classifier" in refs else None,
                              ner_dir=refs["ner"].model_dir if "ner" in refs else None, device=config.device,
                              batch_size=batch_size, backend=config.backend, threads=config.threads)
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"cannot load models {[r.source for r in refs.values()]}: {err}") from err
    for ref in refs.values():
        log.info("model_loaded kind=%s name=%s version=%s alias=%s backend=%s dir=%s seconds=%.1f", ref.kind,
                 ref.name, ref.version, ref.alias, config.backend, ref.model_dir, time.perf_counter() - started)
    return Bundle(predictor, refs, config.backend)


def warm(bundle: Bundle) -> None:
    """First calls pay for lazy allocations (ORT arenas, torch kernels): pay them before /readyz says yes."""
    started = time.perf_counter()
    for _ in range(2):
        bundle.predictor.predict(list(WARMUP_TEXTS), bundle.tasks)
    log.info("models_warmed seconds=%.2f", time.perf_counter() - started)


def length_groups(texts: Sequence[str], max_rows: int, spread: float = 1.3, slack: int = 40) -> list[list[int]]:
    """Indices grouped by similar length (characters stand in for tokens), at most `max_rows` per group.

    On CPU a forward pass costs about rows x longest row: a short paragraph padded to a long one's length is
    paid for in full, and that padding cost more than batching saved (measured: 8 random paragraphs in one
    pass ran 0.66x as fast as one at a time). A group only takes texts within `spread` of its shortest.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    groups: list[list[int]] = []
    for index in order:
        head = groups[-1][0] if groups else None
        if head is None or len(groups[-1]) >= max_rows or len(texts[index]) > spread * len(texts[head]) + slack:
            groups.append([])
        groups[-1].append(index)
    return groups


def predict(bundle: Bundle, texts: Sequence[str], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """One gathered batch: each group of similar length is one model call per task.

    Only ONNX gets length groups: torch's per-call overhead is large enough that one call with some padding
    beats several tight ones (it runs 4x faster at 16 rows than at 1 on the same paragraphs).
    """
    results: list[dict[str, Any]] = [{} for _ in texts]
    spread = 1.3 if bundle.backend.startswith("onnx") else float("inf")
    for group in length_groups(texts, bundle.predictor.batch_size, spread):
        for index, prediction in zip(group, bundle.predictor.predict([texts[i] for i in group], tasks), strict=True):
            results[index] = prediction
    return results


def release_memory() -> None:
    """Collect the old bundle and hand freed heap back to the OS. The new bundle is built on a worker thread,
    whose glibc arena keeps the pages the old one freed (bench/soak.py, 3 reloads under load: RSS 900 -> 1218
    -> 1343 -> 1368 MB without the trim, 905 -> 1195 -> 1314 -> 1314 MB with it: smaller steps, then a plateau)."""
    gc.collect()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; elsewhere the allocator decides
    if trim is not None:
        trim(0)


class Runtime:
    def __init__(self, config: ModelsSection, bundle: Bundle, metrics: ServeMetrics, batch_size: int = 32) -> None:
        self.config, self.bundle, self.metrics, self.batch_size = config, bundle, metrics, batch_size
        self.ready = False
        self._lock = asyncio.Lock()
        self._publish(bundle)

    def _publish(self, bundle: Bundle) -> None:
        self.metrics.model_info.clear()
        for kind, ref in bundle.refs.items():
            self.metrics.model_info.labels(kind, ref.name, ref.version or "", ref.alias or "", bundle.backend).set(1)

    async def warm_up(self) -> None:
        if self.config.warmup:
            await asyncio.to_thread(warm, self.bundle)
        self.ready = True
        self.metrics.ready.set(1)

    @property
    def reloading(self) -> bool:
        return self._lock.locked()

    async def reload(self, classifier: str | None = None, ner: str | None = None,
                     only_if_changed: bool = False) -> tuple[Bundle, bool]:
        """(bundle now serving, whether it changed). Raises ModelSourceError; the old bundle keeps serving."""
        async with self._lock:
            def build() -> Bundle | None:
                refs = resolve_refs(self.config, classifier, ner)
                if only_if_changed and {k: (r.name, r.version) for k, r in refs.items()} == self.bundle.versions():
                    return None
                new = load_bundle(self.config, refs, self.batch_size)
                if self.config.warmup:
                    warm(new)
                return new

            try:
                new = await asyncio.to_thread(build)
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            if new is None:
                return self.bundle, False
            old, self.bundle = self.bundle, new  # the swap: one reference, read once per batch
            self._publish(new)
            self.metrics.reloads.labels("ok").inc()
            log.info("models_reloaded old=%s new=%s", old.versions(), new.versions())
            del old
            await asyncio.to_thread(release_memory)
            return new, True

    async def watch(self, interval: float) -> None:
        """Reload when a registry alias moves; errors are logged and retried at the next tick."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload(only_if_changed=True)
            except Exception as err:
                log.warning("registry_watch_failed error=%s", err)
