"""Stream documents out of batch inputs, whatever their format, without ever holding a whole archive.

`iter_inputs(paths)` yields, in input order, a `SourceDoc` for every readable record and a `SourceError` for
every unreadable one, so that nothing given to `frontwire predict` disappears silently. Formats are told by
content first (magic bytes), by extension second:

- JSONL (gzip / bz2 / xz / zstd compressed or plain): one document per line, `id` + text field (or `html`);
- CSV and Parquet with a text column (Parquet read in record batches);
- a directory tree (walked in sorted order) of any of these, plus .txt / .html / .json single documents;
- tar (any compression) and zip archives, and WARC web archives: see `archives.py`.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lxml import etree

from frontwire.documents import DocumentError, _document_from_json
from frontwire.paragraphs import html_to_text, looks_like_html
from frontwire.serve.batch.formats import (
    STREAM_ERRORS,
    compression_of,
    decompress,
    inner_name,
    sniff_format,
)


@dataclass(frozen=True)
class SourceDoc:
    doc_id: str
    text: str
    path: str
    line: int | None = None  # JSONL/CSV line, Parquet row (1-based)
    member: str | None = None  # archive member or WARC record

    @property
    def source(self) -> str:
        """Where it came from: "file:3", "archive.tar!a/b.html", "pages.parquet:7"."""
        where = f"{self.path}!{self.member}" if self.member else self.path
        return f"{where}:{self.line}" if self.line is not None else where


@dataclass(frozen=True)
class SourceError:
    path: str
    reason: str
    line: int | None = None  # JSONL/CSV line, Parquet row (1-based)
    member: str | None = None  # archive member or WARC record

    def row(self) -> dict[str, Any]:
        return {"path": valid_unicode(self.path), "line": self.line,
                "member": valid_unicode(self.member) if self.member is not None else None,
                "reason": valid_unicode(self.reason)}


_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, one character for one, so offsets stay right.

    Lone surrogates come from JSON escapes of a cut emoji ("\\ud83d") and from file names that are not
    UTF-8; no UTF-8 writer (Parquet, JSONL) takes them, so one would stop the whole job at its shard.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


@dataclass
class ReadOptions:
    text_field: str = "text"
    id_field: str = "id"
    max_member_bytes: int = 50 * 2**20
    max_record_bytes: int = 16 * 2**20


@dataclass
class Position:
    """Bytes of input consumed so far, polled by the progress bar (raw file offsets, so compressed input
    still gives a true fraction of the work done)."""

    total: int = 0
    base: int = 0
    current: IO[bytes] | None = field(default=None, repr=False)

    def done(self) -> int:
        try:
            offset = self.current.tell() if self.current is not None and not self.current.closed else 0
        except (OSError, ValueError):
            offset = 0
        return min(self.total, self.base + offset)


Item = SourceDoc | SourceError
HTML_ERRORS = (ValueError, etree.LxmlError)  # lxml refuses empty or hopeless markup with ParserError


def iter_inputs(paths: list[Path], options: ReadOptions, position: Position | None = None) -> Iterator[Item]:
    position = position if position is not None else Position()
    files = [(path, walk(path) if path.is_dir() else ([path], [])) for path in paths]
    position.total = sum(_size(f) for _, (listed, _) in files for f in listed)
    for root, (listed, skipped) in files:
        yield from skipped
        for path in listed:
            display = str(path)
            doc_id = path.relative_to(root).as_posix() if root.is_dir() else path.name
            try:
                with path.open("rb") as raw:
                    position.current = raw
                    yield from read_file(raw, display, doc_id, options)
            except OSError as err:
                yield SourceError(display, f"cannot read file: {err}")
            position.base += _size(path)
            position.current = None


def walk(root: Path) -> tuple[list[Path], list[SourceError]]:
    """Files under `root` sorted by relative path (stable across runs and machines: resume relies on it), and
    an error row for each folder that is not read: one that cannot be listed, or a symlinked folder. Links
    are not followed (a link to a parent would loop, one to / would pull in the machine); the row says to
    pass the folder as an input of its own."""
    found: list[Path] = []
    skipped: list[SourceError] = []

    def unlistable(err: OSError) -> None:
        skipped.append(SourceError(str(err.filename or root), f"cannot list folder: {err.strerror or err}"))

    for folder, folders, names in os.walk(root, onerror=unlistable):
        for name in sorted(folders):
            link = Path(folder) / name
            if link.is_symlink():
                skipped.append(SourceError(str(link), f"symlinked folder (to {os.path.realpath(link)}) not "
                                                      "followed: pass it as an input of its own to read it"))
        found.extend(Path(folder) / name for name in names)
    return sorted(found, key=lambda path: path.relative_to(root).parts), sorted(skipped, key=lambda e: e.path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_file(raw: IO[bytes], display: str, doc_id: str, options: ReadOptions) -> Iterator[Item]:
    """Every record of one input file (`raw` is opened binary and seekable)."""
    from frontwire.serve.batch import archives, tables

    head = raw.read(512)
    raw.seek(0)
    kind = compression_of(head, display)
    seekable_format = sniff_format(inner_name(display), head) if kind is None else None
    if seekable_format in ("parquet", "zip"):
        # both keep their index at the end of the file: read in place from the seekable file, never streamed
        yield from (tables.read_parquet if seekable_format == "parquet" else archives.read_zip)(raw, display, options)
        return
    stream = decompress(raw, kind)
    try:
        name = inner_name(Path(display).name)
        fmt = sniff_format(name, stream.peek(512)[:512])  # type: ignore[attr-defined]
        if fmt == "jsonl":
            yield from read_jsonl(stream, display, options)
        elif fmt == "csv":
            yield from tables.read_csv(stream, display, options)
        elif fmt == "tar":
            yield from archives.read_tar(stream, display, options)
        elif fmt == "warc":
            yield from archives.read_warc(stream, display, options)
        elif fmt in ("parquet", "zip"):
            yield SourceError(display, f"a compressed {fmt} file cannot be streamed; decompress it first")
        else:
            data = stream.read(options.max_member_bytes + 1)
            if len(data) > options.max_member_bytes:
                yield SourceError(display, f"file is larger than max_member_bytes={options.max_member_bytes}")
            else:
                yield from docs_from_bytes(name, data, doc_id, display, options)
    except STREAM_ERRORS as err:
        # a truncated or corrupt compressed stream: everything before it was yielded, the rest is unreadable
        yield SourceError(display, f"unreadable from here on ({type(err).__name__}: {err})")


def read_jsonl(stream: IO[bytes], display: str, options: ReadOptions, member: str | None = None) -> Iterator[Item]:
    cap = options.max_record_bytes
    line_no = 0
    while True:
        try:
            line = stream.readline(cap + 1)
        except STREAM_ERRORS as err:
            # truncated/corrupt compression: the lines before were read, nothing after can be
            yield SourceError(display, f"unreadable from here on ({type(err).__name__}: {err})", line_no + 1, member)
            return
        if not line:
            return
        line_no += 1
        if len(line) > cap and not line.endswith(b"\n"):
            while (rest := stream.readline(2**20)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the oversized line without holding it
            yield SourceError(display, f"line is longer than max_record_bytes={cap}", line_no, member)
            continue
        if line.strip():
            yield parse_json_line(line, line_no, display, options, member)


def parse_json_line(line: bytes | str, line_no: int, display: str, options: ReadOptions,
                    member: str | None = None) -> Item:
    """One JSONL line → a document or the reason it is not one (shared with the Spark job)."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        # a byte-order mark (Windows tools write one) opens the file, not the first record
        obj = _with_id_field(json.loads(text.removeprefix("\ufeff") if line_no == 1 else text), options)
        doc = _document_from_json(obj, options.text_field, f"line {line_no}")
    except UnicodeDecodeError as err:
        return SourceError(display, f"not UTF-8: {err}", line_no, member)
    except json.JSONDecodeError as err:
        return SourceError(display, f"invalid JSON: {err}", line_no, member)
    except DocumentError as err:
        return SourceError(display, str(err).removeprefix(f"line {line_no}: "), line_no, member)
    except HTML_ERRORS as err:
        return SourceError(display, f"unparsable HTML: {err}", line_no, member)
    return SourceDoc(doc.id, doc.text, display, line_no, member)


def _with_id_field(obj: Any, options: ReadOptions) -> Any:
    if options.id_field != "id" and isinstance(obj, dict):
        return {**obj, "id": obj.get(options.id_field)}
    return obj


def docs_from_bytes(name: str, data: bytes, doc_id: str, display: str, options: ReadOptions,
                    member: str | None = None) -> Iterator[Item]:
    """One file's bytes (a directory entry or an archive member) → its document(s)."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        yield from read_jsonl(io.BufferedReader(io.BytesIO(data)), display, options, member)  # type: ignore[arg-type]
        return
    if lower.endswith(".json"):
        yield from _json_document(data, doc_id, display, options, member)
        return
    if lower.endswith((".html", ".htm")) or looks_like_html(data[:2048].decode("utf-8", "replace")):
        try:
            yield SourceDoc(doc_id, html_to_text(data), display, member=member)
        except HTML_ERRORS as err:
            yield SourceError(display, f"unparsable HTML: {err}", member=member)
        return
    if not lower.endswith(".txt") and b"\x00" in data[:8192]:
        yield SourceError(display, "binary file: not a text, HTML, JSON or archive input", member=member)
        return
    try:
        yield SourceDoc(doc_id, data.decode("utf-8-sig"), display, member=member)
    except UnicodeDecodeError as err:
        yield SourceError(display, f"not UTF-8 text: {err}", member=member)


def _json_document(data: bytes, doc_id: str, display: str, options: ReadOptions, member: str | None
                   ) -> Iterator[Item]:
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        yield SourceError(display, f"invalid JSON: {err}", member=member)
        return
    records = [_with_id_field(record, options) for record in (obj if isinstance(obj, list) else [obj])]
    for index, record in enumerate(records):
        if isinstance(record, dict) and record.get("id") in (None, ""):
            # a file holds one document: its path is its id, as for .txt and .html files
            record = {**record, "id": doc_id if len(records) == 1 else f"{doc_id}#{index}"}
        try:
            doc = _document_from_json(record, options.text_field, "")
        except (DocumentError, *HTML_ERRORS) as err:
            yield SourceError(display, str(err).removeprefix(": "), index + 1 if len(records) > 1 else None, member)
            continue
        yield SourceDoc(doc.id, doc.text, display, index + 1 if len(records) > 1 else None, member)
