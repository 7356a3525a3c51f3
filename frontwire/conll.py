"""CoNLL NER files → records: token first, IOB tag last, blank lines between sentences.

One reader for every stage that takes CoNLL data (`frontwire train benchmark`, `frontwire evaluate FILE.conll`).
A sentence becomes a Record whose text is its tokens joined by single spaces, with entity character spans on
that text, so CoNLL data is trained and scored by exactly the code that handles paragraphs. Its id is
`<file stem>:<first line>`, so every record names where it came from.

CoNLL-2003 has 4 space-separated columns and `-DOCSTART-` lines; WNUT-17 has 2 tab-separated columns, a BOM
and stray BOMs inside tokens. An I-X tag after O or after another type opens an entity (IOB1 files, or an
annotation slip, read as seqeval's default does); each such sentence is reported in `warnings`. A sentence with
a bad line is left out whole and the line reported in `errors`; without an `errors` list it is logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontwire.records import EntitySpan, LineError, Record
from frontwire.schema import LABEL_NAME_PATTERN

log = logging.getLogger(__name__)

_TAG = re.compile(r"^(?:O|(?P<prefix>[BI])-(?P<type>.+))$")
_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)


@dataclass
class _Sentence:
    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    first_line: int = 0
    bad: bool = False


def record_id(path: Path | str, first_line: int) -> str:
    return f"{Path(path).stem}:{first_line}"


def tags_to_spans(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, list[EntitySpan]]:
    """Tokens joined by single spaces, and the character spans of their IOB entities."""
    spans: list[EntitySpan] = []
    position = 0
    current: list[Any] | None = None  # [start, end, type]
    for index, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
        start = position + (1 if index else 0)
        end = start + len(token)
        position = end
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == kind:
            current[1] = end
            continue
        if current is not None:
            spans.append(EntitySpan(start=current[0], end=current[1], label=current[2]))
            current = None
        if prefix in ("B", "I"):
            current = [start, end, kind]
    if current is not None:
        spans.append(EntitySpan(start=current[0], end=current[1], label=current[2]))
    return " ".join(tokens), spans


def orphan_inside_tags(tokens: Sequence[str], tags: Sequence[str]) -> list[str]:
    """`I-X at token 'Kyiv'` for every I-X that opens an entity (not preceded by B-X or I-X)."""
    found, previous = [], "O"
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            found.append(f"{tag} at token {token!r}")
        previous = tag
    return found


def _sentences(path: Path, errors: list[LineError]) -> Iterator[tuple[int, _Sentence]]:
    """(document index, sentence) for every sentence; a sentence with a bad line is reported and skipped."""
    document = 0
    sentence = _Sentence()

    def flush() -> Iterator[tuple[int, _Sentence]]:
        nonlocal sentence
        if sentence.tokens and not sentence.bad:
            yield document, sentence
        sentence = _Sentence()

    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line_no, raw in enumerate(handle, start=1):
            # WNUT-17's dev file carries stray byte-order marks (a line of its own, the end of a token)
            line = raw.replace("\ufeff", "").rstrip("\r\n")
            if not line.strip():
                yield from flush()
                continue
            fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
            if fields[0] == "-DOCSTART-":
                yield from flush()
                document += 1
                continue
            if not sentence.tokens and not sentence.bad:
                sentence.first_line = line_no
            reason = _bad_line(fields)
            if reason:
                errors.append(LineError(str(path), line_no, reason))
                sentence.bad = True
                continue
            sentence.tokens.append(fields[0])
            sentence.tags.append(fields[-1])
        yield from flush()


def _bad_line(fields: list[str]) -> str | None:
    if len(fields) < 2:
        return f"expected a token and a tag column, got {len(fields)} column(s)"
    token, tag = fields[0], fields[-1]
    if not token or any(ch.isspace() for ch in token):
        return f"bad token {token!r}"
    match = _TAG.match(tag)
    if match is None:
        return f"tag {tag!r} is not O, B-TYPE or I-TYPE"
    kind = match.group("type")
    if kind is not None and (kind == "O" or not _LABEL_NAME.match(kind)):
        return f"entity type {kind!r} is not a valid label name"
    return None


def read_conll(
    path: Path | str, errors: list[LineError] | None = None, warnings: list[LineError] | None = None
) -> list[Record]:
    """One Record per sentence. Bad lines go to `errors` (file, line, reason) and drop their sentence; sentences
    whose I- tags open entities go to `warnings` (file, the sentence's first line, which tags)."""
    path = Path(path)
    collected: list[LineError] = []
    records: list[Record] = []
    for document, sentence in _sentences(path, collected):
        text, spans = tags_to_spans(sentence.tokens, sentence.tags)
        orphans = orphan_inside_tags(sentence.tokens, sentence.tags)
        if orphans and warnings is not None:
            warnings.append(LineError(str(path), sentence.first_line, "; ".join(orphans) + " opens an entity"))
        records.append(
            Record(
                id=record_id(path, sentence.first_line),
                text=text,
                entities=spans,
                meta={"file": path.name, "line": sentence.first_line, "document": document},
            )
        )
    if errors is not None:
        errors.extend(collected)
    else:
        for error in collected:
            log.warning("skipped %s:%d: %s", error.path, error.line, error.reason)
    return records


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the tokens of a Record built by `read_conll` (tokens joined by single spaces)."""
    spans, position = [], 0
    for token in text.split(" "):
        spans.append((position, position + len(token)))
        position += len(token) + 1
    return spans
