"""`frontwire labeling import`: a Label Studio export (file or live project) → records, report, splits."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontwire.labeling.ls_export import ImportResult, convert_export
from frontwire.labeling.settings import LabelingConfig
from frontwire.records import fingerprint, write_records
from frontwire.schema import LabelSchema
from frontwire.splits import SPLITS, assign_splits, load_assignment, save_assignment, split_records

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
REPORT_FILE = "import_report.jsonl"
SUMMARY_FILE = "import_summary.json"
SPLITS_FILE = "splits.json"


class ExportFileError(ValueError):
    """The export file itself is unusable (unreadable, not JSON, not a list of tasks); names the file."""


@dataclass
class ImportOutcome:
    result: ImportResult
    out_dir: Path
    summary: dict[str, Any]


def read_export_file(path: Path) -> list[Any]:
    """The tasks of an export file; any list is accepted here, each element is checked by `convert_export`."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ExportFileError(f"{path}: not a JSON file (line {err.lineno}, column {err.colno}): {err.msg}") from err
    except UnicodeDecodeError as err:
        raise ExportFileError(f"{path}: not UTF-8 text (byte {err.start}): {err.reason}") from err
    except RecursionError as err:
        raise ExportFileError(f"{path}: JSON nested too deeply to read") from err
    except ValueError as err:  # e.g. an integer literal past Python's 4300-digit conversion limit
        raise ExportFileError(f"{path}: not a readable JSON file: {err}") from err
    except OSError as err:
        raise ExportFileError(f"{path}: cannot read: {err.strerror or err}") from err
    if isinstance(payload, dict) and "tasks" in payload:
        payload = payload["tasks"]
    if not isinstance(payload, list):
        kinds = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean"}
        kind = kinds.get(type(payload), "null")
        raise ExportFileError(f"{path}: expected a Label Studio JSON export (a list of tasks), got a JSON {kind}")
    return payload


def import_tasks(
    tasks: list[Any], out_dir: Path, schema: LabelSchema, config: LabelingConfig, source: str
) -> ImportOutcome:
    result = convert_export(tasks, schema, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_records(out_dir / RECORDS_FILE, result.records)
    with (out_dir / REPORT_FILE).open("w", encoding="utf-8") as handle:
        for issue in result.issues:
            handle.write(json.dumps(issue.as_dict(), ensure_ascii=False, default=str) + "\n")

    # Stable splits: groups already assigned by an earlier import keep their side.
    previous = load_assignment(out_dir / SPLITS_FILE)
    assignment = assign_splits(result.records, config.split, previous)
    save_assignment(out_dir / SPLITS_FILE, {**previous, **assignment}, config.split)
    parts = split_records(result.records, assignment, config.split.group_by)

    summary = result.summary()
    summary.update(
        source=source,
        schema=schema.tag,
        annotation_policy=config.annotation_policy,
        fingerprint=fingerprint(result.records),
        splits={
            name: {
                "records": len(parts[name]),
                "fingerprint": fingerprint(parts[name]),
                "labels": dict(Counter(label for r in parts[name] for label in (r.labels or ["<none>"]))),
            }
            for name in SPLITS
        },
    )
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    accounted = summary["records"] + result.failed_tasks
    if accounted != summary["tasks"]:  # the invariant the whole import exists to keep
        raise AssertionError(f"import lost tasks: {summary['tasks']} in, {accounted} accounted for")
    log.info(
        "import done source=%s tasks=%d records=%d errors=%d fingerprint=%s",
        source,
        summary["tasks"],
        summary["records"],
        summary["errors"],
        summary["fingerprint"],
    )
    return ImportOutcome(result, out_dir, summary)
