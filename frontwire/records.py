"""The training record: one annotated paragraph, stored one JSON object per line (`records.jsonl`).

    {"id": "guardian-0126-p010",            # paragraph id (else the Label Studio task id)
     "text": "…",                            # the paragraph, exactly as annotated
     "labels": ["strike"],                   # topic labels, schema order; [] means "annotated: none"
     "entities": [{"start": 29, "end": 41, "label": "PER"}],   # Python str offsets, end exclusive
     "meta": {"article_id": "…", "source": "…", "published": "…", "annotator": 1,
              "ls_task_id": 329, "ls_annotation_id": 299}}

Offsets are Python `str` indices (code points), never UTF-16 units; `text[start:end]` is the surface.
Spans are sorted and never overlap, so they map one-to-one onto BIO tags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from frontwire.config import StrictModel
from frontwire.schema import LabelSchema


class EntitySpan(StrictModel):
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    label: str

    @model_validator(mode="after")
    def _ordered(self) -> EntitySpan:
        if self.end <= self.start:
            raise ValueError(f"span end {self.end} must be after start {self.start}")
        return self


class Record(StrictModel):
    id: str = Field(min_length=1)
    text: str
    labels: list[str] = Field(default_factory=list)
    entities: list[EntitySpan] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _spans_inside_text(self) -> Record:
        if not self.text.strip():
            raise ValueError("text is empty")
        previous_end = 0
        for span in self.entities:
            if span.end > len(self.text):
                raise ValueError(f"span {span.start}-{span.end} runs past the text ({len(self.text)} chars)")
            if span.start < previous_end:
                raise ValueError(f"span {span.start}-{span.end} overlaps the previous span or is out of order")
            previous_end = span.end
        return self

    def check_schema(self, schema: LabelSchema) -> None:
        """Raise ValueError when a label or entity type is not in the schema or breaks exclusivity."""
        unknown = sorted(set(self.labels) - set(schema.topic_names))
        if unknown:
            raise ValueError(f"unknown topic labels {unknown}")
        unknown_types = sorted({s.label for s in self.entities} - set(schema.entity_names))
        if unknown_types:
            raise ValueError(f"unknown entity types {unknown_types}")
        for exclusive in schema.exclusive_topics:
            if exclusive in self.labels and len(self.labels) > 1:
                raise ValueError(f"{exclusive!r} is exclusive but the record also has {self.labels}")

    def surface(self, span: EntitySpan) -> str:
        return self.text[span.start : span.end]

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


class RecordFileError(ValueError):
    """A records file line that is not a valid record; names the file and line."""


@dataclass(frozen=True)
class LineError:
    path: str
    line: int
    reason: str


def read_records(
    path: Path | str, schema: LabelSchema | None = None, errors: list[LineError] | None = None
) -> list[Record]:
    """Read a JSONL records file.

    Invalid lines raise RecordFileError naming file and line, unless an `errors` list is given, in which
    case they are collected there and reading goes on (so a caller can report every bad line at once).
    """
    path = Path(path)
    records: list[Record] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = Record.model_validate_json(line)
                if schema is not None:
                    record.check_schema(schema)
            except (ValidationError, ValueError) as err:
                reason = _short_error(err)
                if errors is None:
                    raise RecordFileError(f"{path}:{line_no}: {reason}") from err
                errors.append(LineError(str(path), line_no, reason))
                continue
            records.append(record)
    return records


def write_records(path: Path | str, records: Iterable[Record]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)  # readers never see a half-written file
    return count


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                yield line_no, json.loads(line)


def fingerprint(records: Iterable[Record]) -> str:
    """Content hash of a dataset, independent of record order: the dataset version logged by every stage."""
    digest = hashlib.sha256()
    for line in sorted(record.canonical_json() for record in records):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _short_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in err.errors())
    return str(err)
