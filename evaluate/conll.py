"""CoNLL NER files → records: one token per line, the last column its IOB tag, blank lines between sentences.

A sentence becomes a record whose text is its tokens joined by single spaces, with entity character spans on
that text, so CoNLL data is scored by exactly the code that scores paragraphs. `-DOCSTART-` lines are
skipped; a BOM (the WNUT-17 dev file has one) is ignored. A sentence with a bad line is left out and reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from frontwire.records import EntitySpan, Record

_TAG = re.compile(r"^(O|[BI]-\S+)$")

# (record_id, location, severity, reason, detail), the fields of data.InputIssue
Issue = tuple[str | None, str, str, str, str]


def read_conll(path: Path) -> tuple[list[Record], list[Issue]]:
    records: list[Record] = []
    issues: list[Issue] = []
    tokens: list[tuple[str, str]] = []
    first_line, bad = 0, ""

    def flush() -> None:
        nonlocal tokens, bad
        if tokens or bad:
            record_id = f"{path.stem}:{first_line}"
            if bad:
                issues.append((record_id, f"{path}:{first_line}", "error", "bad_line", bad))
            else:
                records.append(_sentence(record_id, tokens, first_line, issues, f"{path}:{first_line}"))
        tokens, bad = [], ""

    with path.open(encoding="utf-8-sig") as handle:
        for line_no, raw in enumerate(handle, start=1):
            columns = raw.split()
            if not columns or columns[0] == "-DOCSTART-":
                flush()
                continue
            if not tokens and not bad:
                first_line = line_no
            if len(columns) < 2 or not _TAG.match(columns[-1]):
                bad = bad or f"line {line_no}: expected 'token … IOB-tag', got {raw.strip()!r}"
                continue
            tokens.append((columns[0], columns[-1]))
        flush()
    return records, issues


def _sentence(record_id: str, tokens: list[tuple[str, str]], line: int, issues: list[Issue], where: str) -> Record:
    text_parts: list[str] = []
    spans: list[EntitySpan] = []
    current: list = []  # [start, end, label] of the open entity
    position = 0
    for token, tag in tokens:
        start = position + (1 if text_parts else 0)
        text_parts.append(token)
        position = start + len(token)
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current and current[2] == label:
            current[1] = position
            continue
        if current:
            spans.append(EntitySpan(start=current[0], end=current[1], label=current[2]))
            current = []
        if prefix == "I":
            # IOB1 data or an annotation slip: I-X opens an entity, as seqeval's default reading does
            issues.append((record_id, where, "warning", "i_without_b", f"{tag} at token {token!r} opens an entity"))
        if prefix in ("B", "I"):
            current = [start, position, label]
    if current:
        spans.append(EntitySpan(start=current[0], end=current[1], label=current[2]))
    return Record(
        id=record_id, text=" ".join(text_parts), labels=[], entities=spans, meta={"source": "conll", "line": line}
    )
