"""Read article files (plain text, JSONL, HTML; gzip-compressed too) into documents with ids.

Shared by `labeling push` and later batch inference: one way to turn raw articles into paragraphs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontwire.paragraphs import Paragraph, html_to_text, looks_like_html, split_text


@dataclass
class Document:
    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def paragraphs(self) -> list[Paragraph]:
        return split_text(self.text)


class DocumentError(ValueError):
    """An input record that cannot be read; the message names the file and line."""


def content_hash(text: str) -> str:
    """Whitespace-insensitive hash of a paragraph: the idempotency key for pushed tasks."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".html", ".htm", ".txt", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def read_documents(
    path: Path, text_field: str = "text", errors: list[DocumentError] | None = None
) -> Iterator[Document]:
    """Yield documents from one file. JSONL lines need `id` and `text_field` (or `html`).

    A bad JSONL line raises DocumentError naming file and line, or is collected into `errors` when given.
    """
    kinds = path.name.removesuffix(".gz")
    if kinds.endswith((".jsonl", ".ndjson")):
        with _open_text(path) as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield _document_from_json(json.loads(line), text_field, f"{path}:{line_no}")
                except (json.JSONDecodeError, DocumentError) as err:
                    error = err if isinstance(err, DocumentError) else DocumentError(f"{path}:{line_no}: {err}")
                    if errors is None:
                        raise error from err
                    errors.append(error)
        return
    with _open_text(path) as handle:
        raw = handle.read()
    if kinds.endswith((".html", ".htm")) or looks_like_html(raw):
        yield Document(_stem(path), html_to_text(raw), {"source_file": str(path), "format": "html"})
    else:
        yield Document(_stem(path), raw, {"source_file": str(path), "format": "text"})


def _document_from_json(obj: Any, text_field: str, where: str) -> Document:
    if not isinstance(obj, dict):
        raise DocumentError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    doc_id = obj.get("id")
    if doc_id in (None, ""):
        raise DocumentError(f"{where}: record has no 'id'")
    if isinstance(obj.get(text_field), str):
        text = obj[text_field]
    elif isinstance(obj.get("html"), str):
        text = html_to_text(obj["html"])
    else:
        raise DocumentError(f"{where}: record {doc_id!r} has no string {text_field!r} (or 'html') field")
    meta = {k: v for k, v in obj.items() if k not in {"id", text_field, "html"}}
    return Document(str(doc_id), text, meta)
