"""Documents from tables: CSV (streamed) and Parquet (read in record batches), one document per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from frontwire.serve.batch.sources import Item, ReadOptions, SourceDoc, SourceError


def read_csv(stream: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    csv.field_size_limit(options.max_record_bytes)
    # undecodable bytes are kept as surrogates so that one bad byte costs its own row (an error naming the line),
    # not the rest of the file
    reader = csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=""))
    if reader.fieldnames is None or options.text_field not in reader.fieldnames:
        yield SourceError(display, f"CSV has no {options.text_field!r} column (columns: {reader.fieldnames})", 1)
        return
    while True:
        line_no = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield SourceError(display, f"bad CSV row: {err}", line_no)
            continue
        if not all(_is_utf8(row.get(field)) for field in (options.id_field, options.text_field)):
            yield SourceError(display, "not UTF-8: the row's id or text holds bytes that are not UTF-8", line_no)
            continue
        yield tabular_doc(row.get(options.id_field), row.get(options.text_field), display, line_no, "line")


def read_parquet(raw: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(raw)
    except (pa.ArrowException, OSError) as err:
        yield SourceError(display, f"not a readable Parquet file: {err}")
        return
    names = parquet.schema_arrow.names
    if options.text_field not in names:
        yield SourceError(display, f"Parquet has no {options.text_field!r} column (columns: {names})")
        return
    columns = [options.text_field] + ([options.id_field] if options.id_field in names else [])
    row = 0
    batches = parquet.iter_batches(batch_size=512, columns=columns)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as err:  # a corrupt row group behind a good footer
            yield SourceError(display, f"unreadable from row {row + 1} on ({type(err).__name__}: {err})", row + 1)
            return
        if batch is None:
            return
        texts = _strings(batch.column(options.text_field))
        ids = _strings(batch.column(options.id_field)) if options.id_field in names else [None] * len(texts)
        for doc_id, text in zip(ids, texts, strict=True):
            row += 1
            yield tabular_doc(doc_id, text, display, row, "row")


def _strings(column) -> list[Any]:
    """A column's values; string data that is not UTF-8 (other writers do not check) as the raw bytes, which
    `tabular_doc` reports row by row, instead of one error that would stop the file."""
    import pyarrow as pa

    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()).to_pylist()
        return [_decoded(value) for value in raw]


class _NotUtf8(bytes):
    """String data that does not decode (a binary column's bytes are another matter: those are not text)."""


def _decoded(value: bytes | None) -> str | bytes | None:
    try:
        return value.decode("utf-8") if value is not None else None
    except UnicodeDecodeError:
        return _NotUtf8(value)


def _is_utf8(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate standing for an undecodable byte
        return False
    return True


def tabular_doc(doc_id: Any, text: Any, display: str, number: int, unit: str) -> Item:
    if isinstance(text, _NotUtf8) or isinstance(doc_id, _NotUtf8):
        return SourceError(display, f"not UTF-8: {unit} {number}'s id or text holds bytes that are not UTF-8", number)
    if not isinstance(text, str):
        return SourceError(display, f"{unit} {number} has no text (got {type(text).__name__})", number)
    # a table without ids still gives every document a stable, unique id: its position
    return SourceDoc(str(doc_id) if doc_id not in (None, "") else f"{Path(display).name}:{number}", text,
                     display, number)
