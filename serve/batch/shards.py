"""Sharded, crash-safe output: shard files + a manifest, merged into the final file at the end.

Layout for `--output OUT`:
    OUT.parts/manifest.json                 settings fingerprint, finished shards and their counts
    OUT.parts/shard-00000.<ext>             one shard's paragraph rows
    OUT.parts/shard-00000.errors.jsonl      the same shard's unreadable records
    OUT, OUT.errors.jsonl                   the merged result, written once every shard is done

Every file is written under a temporary name and renamed into place after an fsync, and the manifest
names a shard only after its files are in place: a `kill -9` at any moment leaves finished shards intact
and the partial one absent, which is what `--resume` relies on.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
ENTITY = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("label", pa.string()), ("score", pa.float64()),
                    ("text", pa.string())])


def output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    raise ValueError(f"--output {path}: want a .parquet or .jsonl (.jsonl.gz) file")


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def default_errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.jsonl")


def row_schema(topic_labels: Sequence[str] | None, with_ner: bool, include_text: bool) -> pa.Schema:
    """One row per paragraph; columns of a task that did not run are left out rather than left null."""
    fields = [("doc_id", pa.string()), ("source", pa.string()), ("paragraph_index", pa.int32()),
              ("start", pa.int64()), ("end", pa.int64())]
    if include_text:
        fields.append(("text", pa.string()))
    if topic_labels is not None:
        fields += [("labels", pa.list_(pa.string())),
                   ("scores", pa.struct([(label, pa.float64()) for label in topic_labels])),
                   ("classifier_version", pa.string())]
    if with_ner:
        fields += [("entities", pa.list_(ENTITY)), ("ner_version", pa.string())]
    return pa.schema(fields)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write `path.tmp`, fsync, rename over `path`: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open(mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ShardWriter:
    """Rows of one shard, appended chunk by chunk (memory holds one chunk, not the shard)."""

    def __init__(self, directory: Path, index: int, fmt: str, schema: pa.Schema, gzip_jsonl: bool) -> None:
        self.index, self.fmt, self.schema = index, fmt, schema
        self.path = directory / shard_name(index, fmt, gzip_jsonl)
        self.errors_path = directory / f"shard-{index:05d}.errors.jsonl"
        self._stack = contextlib.ExitStack()
        self._out = self._stack.enter_context(atomic_file(self.path))
        self._errors = self._stack.enter_context(atomic_file(self.errors_path))
        self._parquet = pq.ParquetWriter(self._out, schema) if fmt == "parquet" else None
        self._jsonl = self._stack.enter_context(gzip.GzipFile(fileobj=self._out, mode="wb", mtime=0)) \
            if fmt == "jsonl" and gzip_jsonl else self._out
        self.rows = self.errors = self.documents = 0

    def write(self, rows: list[dict[str, Any]], errors: list[dict[str, Any]], documents: int) -> None:
        if rows and self._parquet is not None:
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        elif rows:
            self._jsonl.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows))
        self._errors.write(b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in errors))
        self.rows += len(rows)
        self.errors += len(errors)
        self.documents += documents

    def close(self) -> dict[str, Any]:
        if self._parquet is not None:
            self._parquet.close()
        self._stack.close()  # gzip trailer, then fsync + rename of both files
        return {"rows": self.rows, "errors": self.errors, "documents": self.documents, "file": self.path.name}

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


def shard_name(index: int, fmt: str, gzip_jsonl: bool) -> str:
    return f"shard-{index:05d}." + ("parquet" if fmt == "parquet" else "jsonl.gz" if gzip_jsonl else "jsonl")


class Manifest:
    """Which shards are finished, under which settings. Saved atomically after every shard."""

    def __init__(self, directory: Path, fingerprint: dict[str, Any], shards: dict[str, Any] | None = None,
                 complete: bool = False, summary: dict[str, Any] | None = None) -> None:
        self.directory, self.fingerprint = directory, fingerprint
        self.shards: dict[str, Any] = shards or {}
        self.complete, self.summary = complete, summary or {}

    @classmethod
    def load(cls, directory: Path) -> Manifest | None:
        path = directory / MANIFEST
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(directory, data["fingerprint"], data["shards"], data.get("complete", False), data.get("summary"))

    def finished(self) -> set[int]:
        """Shards recorded here whose files are still on disk (or already merged, once complete)."""
        return {int(k) for k, v in self.shards.items()
                if self.complete or ((self.directory / v["file"]).is_file()
                                     and (self.directory / f"shard-{int(k):05d}.errors.jsonl").is_file())}

    def record(self, index: int, info: dict[str, Any]) -> None:
        self.shards[str(index)] = info
        self.save()

    def save(self) -> None:
        data = {"fingerprint": self.fingerprint, "shards": self.shards, "complete": self.complete,
                "summary": self.summary}
        with atomic_file(self.directory / MANIFEST, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)

    def totals(self) -> dict[str, int]:
        return {key: sum(int(v[field]) for v in self.shards.values())
                for key, field in (("documents", "documents"), ("paragraphs", "rows"), ("errors", "errors"))}


def merge(manifest: Manifest, output: Path, errors_path: Path, fmt: str, keep_shards: bool) -> None:
    """Concatenate shards in index order into `output` and `errors_path` (streaming, one shard at a time)."""
    indices = sorted(int(k) for k in manifest.shards)
    files = [manifest.directory / manifest.shards[str(i)]["file"] for i in indices]
    with atomic_file(output) as handle:
        if fmt == "parquet":
            schema = pq.read_schema(files[0]) if files else pa.schema([])
            with pq.ParquetWriter(handle, schema) as writer:
                for path in files:
                    # shards hold one small row group per chunk: re-batch into large groups for readers
                    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
                        writer.write_batch(batch)
        else:
            for path in files:  # gzip members concatenate into one valid gzip stream, plain lines too
                with path.open("rb") as shard:
                    shutil.copyfileobj(shard, handle, 2**20)
    with atomic_file(errors_path) as handle:
        for index in indices:
            with (manifest.directory / f"shard-{index:05d}.errors.jsonl").open("rb") as shard:
                shutil.copyfileobj(shard, handle, 2**20)
    manifest.complete = True
    manifest.save()
    if not keep_shards:
        for index, path in zip(indices, files, strict=True):
            path.unlink(missing_ok=True)
            (manifest.directory / f"shard-{index:05d}.errors.jsonl").unlink(missing_ok=True)
