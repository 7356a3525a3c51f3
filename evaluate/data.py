"""Evaluation inputs → records, with every bad record reported instead of stopping the run.

Accepted: a records folder from `frontwire labeling import` (records.jsonl + splits.json), a Label Studio JSON
export, a records JSONL file (a splits.json beside it is honoured), or a CoNLL file (NER only).
Issue severities: "error" = the record is left out of scoring; "warning" = scored, with the caveat noted.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frontwire.conll import read_conll
from frontwire.conll import record_id as conll_record_id
from frontwire.evaluate.entities import word_offsets
from frontwire.labeling.importer import RECORDS_FILE, SPLITS_FILE, read_export_file
from frontwire.labeling.ls_export import ERROR, convert_export
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import default_data_dir
from frontwire.records import Record, fingerprint, read_records
from frontwire.schema import LabelSchema
from frontwire.splits import SPLITS, assign_splits, group_key, load_assignment

log = logging.getLogger(__name__)

ALL = "all"
WARNING = "warning"


class DataError(ValueError):
    """The data argument as a whole is unusable (missing file, wrong format for the model kind)."""


@dataclass(frozen=True)
class InputIssue:
    record_id: str | None
    location: str
    severity: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalData:
    records: list[Record]
    issues: list[InputIssue]
    source: str
    format: str
    split: str
    # all validated splits, when the source has them: what `baseline:tfidf` trains (train) and tunes (dev) on
    parts: dict[str, list[Record]] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        errors = Counter(i.reason for i in self.issues if i.severity == ERROR)
        warnings = Counter(i.reason for i in self.issues if i.severity != ERROR)
        return {
            "source": self.source,
            "format": self.format,
            "split": self.split,
            "records": len(self.records),
            "fingerprint": fingerprint(self.records),
            "input_errors": errors.total(),
            "input_warnings": warnings.total(),
            "input_errors_by_reason": dict(sorted(errors.items())),
            "input_warnings_by_reason": dict(sorted(warnings.items())),
        }


def write_issues(path: Path, issues: list[InputIssue]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for issue in issues:
            handle.write(json.dumps(issue.as_dict(), ensure_ascii=False) + "\n")


def load_eval_data(source: Path, schema: LabelSchema, kind: str, split: str) -> EvalData:
    if split not in (*SPLITS, ALL):
        raise DataError(f"--split must be one of {[*SPLITS, ALL]}, got {split!r}")
    issues: list[InputIssue] = []
    assignment: dict[str, str] | None = None
    if source.is_dir():
        if not (source / RECORDS_FILE).is_file():
            raise DataError(f"{source}: no {RECORDS_FILE} (expected a folder from `frontwire labeling import`)")
        records, fmt = _read_jsonl(source / RECORDS_FILE, issues), "records_dir"
        assignment = load_assignment(source / SPLITS_FILE) if (source / SPLITS_FILE).is_file() else None
    elif not source.is_file():
        raise DataError(f"{source}: no such file or folder")
    elif source.suffix == ".json":
        records, fmt = _read_export(source, schema, issues), "label_studio_export"
        # The same stable assignment training used: a split saved by an earlier import of this export wins,
        # the rest is assigned deterministically (nothing is written).
        config = load_labeling_config().split
        previous = load_assignment(default_data_dir() / source.name.removesuffix(".json") / SPLITS_FILE)
        assignment = assign_splits(records, config, previous)
    elif source.suffix == ".jsonl":
        records, fmt = _read_jsonl(source, issues), "records_jsonl"
        beside = source.parent / SPLITS_FILE
        assignment = load_assignment(beside) if beside.is_file() else None
    else:
        if kind != "ner":
            raise DataError(f"{source}: a CoNLL file has no topic labels; a classifier needs records or an export")
        bad_lines: list = []
        orphans: list = []
        records = read_conll(source, bad_lines, orphans)
        issues.extend(InputIssue(None, f"{e.path}:{e.line}", ERROR, "bad_line", e.reason) for e in bad_lines)
        issues.extend(
            InputIssue(conll_record_id(e.path, e.line), f"{e.path}:{e.line}", WARNING, "i_without_b", e.reason)
            for e in orphans
        )
        fmt = "conll"
    records = [r for r in records if _valid(r, schema, kind, issues)]
    if assignment is None:
        if split != ALL:
            log.warning("no_splits source=%s format=%s split=%s: every record is evaluated", source, fmt, split)
        return EvalData(records, issues, str(source), fmt, ALL)
    parts = _split(records, assignment, load_labeling_config().split.group_by, issues)
    chosen = [r for part in parts.values() for r in part] if split == ALL else parts[split]
    return EvalData(chosen, issues, str(source), fmt, split, parts)


def _read_jsonl(path: Path, issues: list[InputIssue]) -> list[Record]:
    errors: list = []
    records = read_records(path, None, errors)  # schema checks come per model kind, below
    issues.extend(InputIssue(None, f"{e.path}:{e.line}", ERROR, "invalid_record", e.reason) for e in errors)
    return records


def _read_export(path: Path, schema: LabelSchema, issues: list[InputIssue]) -> list[Record]:
    result = convert_export(read_export_file(path), schema, load_labeling_config())
    for issue in result.issues:
        severity = ERROR if issue.severity == ERROR else WARNING
        issues.append(InputIssue(issue.record_id, f"task {issue.task_id}", severity, issue.reason, issue.detail))
    return result.records


def _valid(record: Record, schema: LabelSchema, kind: str, issues: list[InputIssue]) -> bool:
    """Schema checks for the kind being evaluated: an unknown entity type does not spoil a topic evaluation."""
    where = record.id

    def fail(reason: str, detail: str) -> bool:
        issues.append(InputIssue(record.id, where, ERROR, reason, detail))
        return False

    if kind == "classifier":
        unknown = sorted(set(record.labels) - set(schema.topic_names))
        if unknown:
            return fail("unknown_label", f"topic labels {unknown} are not in schema {schema.tag}")
        for exclusive in schema.exclusive_topics:
            if exclusive in record.labels and len(record.labels) > 1:
                return fail("exclusive_violated", f"{exclusive!r} is exclusive but the record has {record.labels}")
        return True
    unknown = sorted({s.label for s in record.entities} - set(schema.entity_names))
    if unknown:
        return fail("unknown_entity_type", f"entity types {unknown} are not in schema {schema.tag}")
    words = word_offsets(record.text)
    starts, ends = {w[0] for w in words}, {w[1] for w in words}
    for span in record.entities:
        if span.start not in starts or span.end not in ends:
            # scored as the whole words it touches, the same projection seqeval scoring applies
            issues.append(
                InputIssue(
                    record.id,
                    where,
                    WARNING,
                    "misaligned_span",
                    f"{span.label} {span.start}-{span.end} {record.surface(span)!r} cuts a word",
                )
            )
    return True


def _split(
    records: list[Record], assignment: dict[str, str], group_by: str, issues: list[InputIssue]
) -> dict[str, list[Record]]:
    parts: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for record in records:
        split = assignment.get(group_key(record, group_by))
        if split not in parts:
            issues.append(
                InputIssue(
                    record.id,
                    record.id,
                    ERROR,
                    "no_split",
                    f"group {group_key(record, group_by)!r} has no split in {SPLITS_FILE}",
                )
            )
            continue
        parts[split].append(record)
    return parts
