"""The local batch engine: inputs → documents → paragraphs → predictions → sharded output → one file.

Paragraphs are numbered in input order and paragraph `n` goes to shard `n // shard_size`; an unreadable
record goes to the shard that the next paragraph would. The assignment depends only on the inputs, so a
resumed run regenerates exactly the same shards, skips (without running the model) those the manifest
names as finished, and recomputes the rest.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frontwire.paragraphs import split_text
from frontwire.progress import progress as progress_bar
from frontwire.serve.batch import shards
from frontwire.serve.batch.models import ResolvedModel, job_models
from frontwire.serve.batch.runners import make_runner
from frontwire.serve.batch.settings import PredictConfig
from frontwire.serve.batch.sources import (
    Item,
    Position,
    ReadOptions,
    SourceError,
    iter_inputs,
    valid_unicode,
    walk,
)

log = logging.getLogger(__name__)


class BatchError(RuntimeError):
    """A batch job that cannot start or continue as asked (existing output, changed inputs on --resume)."""


@dataclass
class Unit:
    doc_id: str
    source: str
    index: int
    start: int
    end: int
    text: str


@dataclass
class Chunk:
    shard: int
    paragraphs: list[Unit] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    documents: int = 0


@dataclass
class BatchResult:
    documents: int
    paragraphs: int
    errors: int
    shards: int
    shards_skipped: int
    paragraphs_predicted: int
    seconds: float
    paragraphs_per_s: float
    output: str
    errors_file: str


def iter_chunks(items: Iterator[Item], shard_size: int, chunk_size: int) -> Iterator[Chunk]:
    count = 0  # paragraphs so far: the only thing shard assignment depends on
    chunk, emitted = Chunk(0), False
    for unit in units_of(items):
        shard = count // shard_size
        if shard != chunk.shard or (isinstance(unit, Unit) and len(chunk.paragraphs) >= chunk_size):
            if chunk.paragraphs or chunk.errors:
                yield chunk
                emitted = True
            chunk = Chunk(shard)
        if isinstance(unit, Unit):
            chunk.paragraphs.append(unit)
            chunk.documents += unit.index == 0
            count += 1
        else:
            chunk.errors.append(unit)
    if chunk.paragraphs or chunk.errors or not emitted:
        yield chunk  # an input with no records at all still gives shard 0 (empty): the output always exists


def units_of(items: Iterator[Item]) -> Iterator[Unit | dict[str, Any]]:
    """Paragraphs of each document in order, and an error row for each unreadable record."""
    for item in items:
        if isinstance(item, SourceError):
            yield item.row()
            continue
        paragraphs = split_text(valid_unicode(item.text))
        if not paragraphs:  # a record with no text is reported, not silently lost
            yield SourceError(item.path, f"document {item.doc_id!r} has no text", item.line, item.member).row()
        doc_id, source = valid_unicode(item.doc_id), valid_unicode(item.source)
        for paragraph in paragraphs:
            yield Unit(doc_id, source, paragraph.index, paragraph.start, paragraph.end, paragraph.text)


def build_rows(chunk: Chunk, predictions: list[dict[str, Any]], versions: dict[str, str], include_text: bool
               ) -> list[dict[str, Any]]:
    rows = []
    for unit, prediction in zip(chunk.paragraphs, predictions, strict=True):
        row: dict[str, Any] = {"doc_id": unit.doc_id, "source": unit.source, "paragraph_index": unit.index,
                               "start": unit.start, "end": unit.end}
        if include_text:
            row["text"] = unit.text
        if "classifier" in versions:
            row.update(labels=prediction["labels"], scores=prediction["scores"],
                       classifier_version=versions["classifier"])
        if "ner" in versions:
            row.update(entities=prediction["entities"], ner_version=versions["ner"])
        rows.append(row)
    return rows


def fingerprint(inputs: list[Path], cfg: PredictConfig, fmt: str, models: dict[str, str]) -> dict[str, Any]:
    """What must not change between a run and its --resume, or shards would not line up."""
    from frontwire.predictor import resolve_backend

    files = []
    for path in inputs:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns, path.is_dir()])
        if path.is_dir():  # a folder's own mtime misses edits to its files and additions to its subfolders
            files[-1].append(_tree_digest(path))
    # the backend too (as resolved: "auto" is torch on a GPU): int8 and fp32 scores in one output would pass
    # for one model's
    return {"inputs": files, "input": cfg.input.model_dump(), "shard_size": cfg.output.shard_size,
            "include_text": cfg.output.include_text, "format": fmt, "models": models,
            "backend": resolve_backend(cfg.runtime.backend, cfg.runtime.device)}


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in walk(root)[0]:
        try:
            stat = path.stat()
        except OSError:  # unreadable now: the run reports it as an error row
            stat = None
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat and stat.st_size}\0{stat and stat.st_mtime_ns}\n"
                      .encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def run(inputs: list[Path], output: Path, cfg: PredictConfig, *, resume: bool = False, overwrite: bool = False,
        errors_path: Path | None = None, models: tuple[ResolvedModel | None, ResolvedModel | None] | None = None,
        progress: bool = True) -> BatchResult:
    started = time.perf_counter()
    for path in inputs:
        if not path.exists():
            raise BatchError(f"input {path} does not exist")
    fmt = shards.output_format(output)
    errors_path = errors_path or shards.default_errors_path(output)
    job = job_models(cfg.models, models)
    versions = job.versions
    manifest = _open_manifest(output, fingerprint(inputs, cfg, fmt, versions), resume, overwrite)
    if manifest.complete:
        log.info("batch.already_complete output=%s", output)
        # a kill between the merge and the summary's save leaves no summary: the counts are in the shards
        return BatchResult(**manifest.summary) if manifest.summary else BatchResult(
            **manifest.totals(), shards=len(manifest.shards), shards_skipped=len(manifest.shards),
            paragraphs_predicted=0, seconds=0.0, paragraphs_per_s=0.0, output=str(output),
            errors_file=str(errors_path))
    done = manifest.finished()
    spec = job.spec(cfg.runtime)
    schema = job.row_schema(cfg.output.include_text)
    workers = cfg.runtime.worker_count()
    log.info("batch.start inputs=%d output=%s parallelism=%s workers=%d shards_done=%d models=%s", len(inputs),
             output, cfg.runtime.parallelism, workers, len(done), versions)
    runner = make_runner(spec, cfg.runtime.parallelism, workers)
    position = Position()
    options = ReadOptions(**cfg.input.model_dump())
    chunks = iter_chunks(iter_inputs(inputs, options, position), cfg.output.shard_size, cfg.runtime.chunk_size)
    bar = progress_bar(desc="predict", unit="para", event="batch.predict", logger=log, disable=not progress,
                       dynamic_ncols=True, smoothing=0.1)
    loop_start = time.perf_counter()
    predicted = 0
    writer: shards.ShardWriter | None = None

    def todo() -> Iterator[tuple[Chunk, list[str]]]:
        for chunk in chunks:
            if chunk.shard in done:  # finished before a crash: fast-forward without the model
                _advance(bar, position, len(chunk.paragraphs))
                continue
            yield chunk, [unit.text for unit in chunk.paragraphs]

    try:
        for chunk, predictions in runner.map(todo()):
            if writer is not None and writer.index != chunk.shard:
                manifest.record(writer.index, writer.close())
                log.info("batch.shard_done shard=%d rows=%d errors=%d", writer.index, writer.rows, writer.errors)
                writer = None
            if writer is None:
                writer = shards.ShardWriter(manifest.directory, chunk.shard, fmt, schema, output.name.endswith(".gz"))
            writer.write(build_rows(chunk, predictions, versions, cfg.output.include_text), chunk.errors,
                         chunk.documents)
            predicted += len(chunk.paragraphs)
            _advance(bar, position, len(chunk.paragraphs))
        if writer is not None:
            manifest.record(writer.index, writer.close())
            writer = None
    except BaseException:
        if writer is not None:
            writer.abort()  # the partial shard leaves no file behind: --resume redoes it
        raise
    finally:
        bar.close()
        runner.close()
    loop_seconds = time.perf_counter() - loop_start
    _check_contiguous(manifest)
    shards.merge(manifest, output, errors_path, fmt, cfg.output.keep_shards)
    result = BatchResult(**manifest.totals(), shards=len(manifest.shards), shards_skipped=len(done),
                         paragraphs_predicted=predicted, seconds=round(time.perf_counter() - started, 2),
                         paragraphs_per_s=round(predicted / loop_seconds, 2) if loop_seconds > 0 else 0.0,
                         output=str(output), errors_file=str(errors_path))
    manifest.summary = asdict(result)
    manifest.save()
    log.info("batch.done %s", " ".join(f"{k}={v}" for k, v in asdict(result).items()))
    return result


def _advance(bar: Any, position: Position, paragraphs: int) -> None:
    bar.update(paragraphs)
    done = position.done()
    if position.total and done:
        # total paragraphs are unknown until the end: extrapolate from the share of input bytes consumed
        bar.total = max(bar.n, int(bar.n * position.total / done))


def _check_contiguous(manifest: shards.Manifest) -> None:
    indices = sorted(int(k) for k in manifest.shards)
    if indices != list(range(len(indices))):
        raise BatchError(f"shards missing from {manifest.directory}: have {indices}")


def _open_manifest(output: Path, print_: dict[str, Any], resume: bool, overwrite: bool) -> shards.Manifest:
    directory = shards.parts_dir(output)
    existing = shards.Manifest.load(directory)
    if overwrite:
        shutil.rmtree(directory, ignore_errors=True)
        output.unlink(missing_ok=True)
        existing = None
    elif existing is not None and not resume:
        raise BatchError(f"{directory} holds an earlier run: pass --resume to continue it or --overwrite")
    elif existing is None and output.exists():
        raise BatchError(f"{output} exists: pass --overwrite to replace it")
    if existing is not None:
        old = existing.fingerprint
        unrecorded = sorted(set(print_) - set(old))
        if unrecorded:  # begun by an older frontwire: what it did not record cannot be checked
            log.warning("batch.resume_unchecked output=%s not_recorded=%s", output, ",".join(unrecorded))
        changed = sorted(k for k in set(print_) | set(old) if k not in unrecorded and print_.get(k) != old.get(k))
        if changed:
            raise BatchError(f"cannot --resume {directory}: {', '.join(changed)} changed since the run began")
        return existing
    directory.mkdir(parents=True, exist_ok=True)
    manifest = shards.Manifest(directory, print_)
    manifest.save()
    return manifest
