"""What `frontwire labeling review` finds: suspects (annotations the out-of-fold models doubt), as JSONL.

One suspect is one decision in doubt: a topic on a record (given but unlikely, or likely but not given) or one
entity span (a span the models reject or type otherwise, or a span they find that nobody annotated).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from frontwire.config import StrictModel
from frontwire.records import Record

SuspectKind = Literal["topic", "entity"]
SuspectError = Literal["topic_extra", "topic_missing", "span_rejected", "span_missing", "span_type"]


class SpanAnnotation(StrictModel):
    start: int
    end: int
    label: str
    text: str


class Suspect(StrictModel):
    kind: SuspectKind
    error: SuspectError
    score: float
    rank: int
    record_id: str
    task_id: int | None
    article_id: str
    text: str
    # the topic in doubt (topic suspects) or the character range in doubt (entity suspects)
    topic: str | None
    span: tuple[int, int] | None
    # topic suspects: the record's whole label list as given / as suggested;
    # entity suspects: the span as given / as suggested (None: no span there)
    given: list[str] | SpanAnnotation | None
    suggested: list[str] | SpanAnnotation | None
    # every entity span of the record as annotated, so a page can show the suspect in context
    entities: list[SpanAnnotation]
    evidence: dict[str, Any]


def record_fields(record: Record) -> dict[str, Any]:
    """The suspect fields every kind copies from its record (ids, text, annotated spans)."""
    task_id = record.meta.get("ls_task_id")
    return {
        "record_id": record.id,
        "task_id": int(task_id) if task_id is not None else None,
        "article_id": str(record.meta.get("article_id") or record.id),
        "text": record.text,
        "entities": [
            SpanAnnotation(start=s.start, end=s.end, label=s.label, text=record.surface(s)) for s in record.entities
        ],
    }


def write_suspects(path: Path, suspects: Iterable[Suspect]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for suspect in suspects:
            handle.write(json.dumps(suspect.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)  # a reader (or --push) never sees half a queue
    return count


def read_suspects(path: Path) -> list[Suspect]:
    suspects = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    suspects.append(Suspect.model_validate_json(line))
                except ValueError as err:
                    raise ValueError(f"{path}:{line_no}: not a review suspect: {err}") from err
    return suspects
