"""The real shared Label Studio export through the real `frontwire labeling import` CLI: every task accounted
for, records spot-checked against the export, splits grouped by article and stable across imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ls_export_tasks import EXCLUSIVE, SCHEMA, config, u16

from frontwire.paths import shared_dir
from frontwire.records import read_records


def frontwire_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("frontwire")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("frontwire")
    assert found, "the frontwire console script is not installed"
    return [found]


def cli_import(export: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRONTWIRE_LOG_LEVEL": "WARNING"}
    proc = subprocess.run(
        [*frontwire_cmd(), "labeling", "import", str(export), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def read_report(out: Path) -> list[dict[str, Any]]:
    with (out / "import_report.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_groups(out: Path) -> dict[str, str]:
    return json.loads((out / "splits.json").read_text(encoding="utf-8"))["groups"]


@pytest.fixture(scope="module")
def shared_export() -> Path:
    shared = shared_dir()
    if shared is None or not (shared / "data" / "labelstudio_export.json").is_file():
        pytest.skip("../shared (the real Label Studio export) is not present")
    return shared / "data" / "labelstudio_export.json"


@pytest.fixture(scope="module")
def export_tasks(shared_export: Path) -> list[dict[str, Any]]:
    return json.loads(shared_export.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def imported(shared_export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("shared-import")
    proc = cli_import(shared_export, out)
    return out, proc.stdout


def test_shared_export_every_task_accounted_for(export_tasks: list[dict[str, Any]], imported: tuple[Path, str]) -> None:
    out, stdout = imported
    records = read_records(out / "records.jsonl", SCHEMA)
    report = read_report(out)
    error_rows = [row for row in report if row["severity"] == "error"]
    task_ids = [t["id"] for t in export_tasks]
    assert all(row["task_id"] is not None for row in report)
    error_ids = [row["task_id"] for row in error_rows]
    record_ids = [r.meta["ls_task_id"] for r in records]
    assert len(records) + len(error_rows) == len(export_tasks)
    assert sorted(record_ids + error_ids) == sorted(task_ids)  # each task exactly once

    # the unlabeled queue and the skipped tasks are reported, never records
    unannotated = {t["id"] for t in export_tasks if not t["annotations"]}
    all_cancelled = {
        t["id"] for t in export_tasks if t["annotations"] and all(a["was_cancelled"] for a in t["annotations"])
    }
    assert unannotated and all_cancelled
    reasons = {row["task_id"]: row["reason"] for row in error_rows}
    assert {reasons.get(i) for i in unannotated} == {"unlabeled"}
    assert {reasons.get(i) for i in all_cancelled} == {"cancelled"}

    summary = json.loads((out / "import_summary.json").read_text(encoding="utf-8"))
    assert summary["tasks"] == len(export_tasks)
    assert summary["records"] == len(records)
    assert summary["errors_by_reason"] == dict(sorted(Counter(reasons.values()).items()))
    assert f"{len(export_tasks)} tasks -> {len(records)} records, {len(error_rows)} errors" in stdout


def _first(tasks: list[dict[str, Any]], accepted: set[int], predicate) -> dict[str, Any]:
    for t in tasks:
        if t["id"] in accepted and predicate(t):
            return t
    raise AssertionError("no task in the shared export fits this spot check")


def _live(t: dict[str, Any]) -> dict[str, Any]:
    live = [a for a in t["annotations"] if not a["was_cancelled"]]
    assert len(live) == 1
    return live[0]


def _export_spans(t: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["value"] for r in _live(t)["result"] if r["type"] == "labels"]


def _export_choices(t: dict[str, Any]) -> set[str]:
    return {c for r in _live(t)["result"] if r["type"] == "choices" for c in r["value"]["choices"]}


def test_shared_export_records_match_the_export(export_tasks: list[dict[str, Any]], imported: tuple[Path, str]) -> None:
    out, _ = imported
    records = {r.meta["ls_task_id"]: r for r in read_records(out / "records.jsonl", SCHEMA)}
    accepted = set(records)

    def astral_after(t: dict[str, Any]) -> bool:
        text = t["data"]["text"]
        astral = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
        return bool(astral) and any(v["start"] > astral[0] for v in _export_spans(t))

    picks = {
        "astral": _first(export_tasks, accepted, astral_after),
        "many spans + topics": _first(
            export_tasks, accepted, lambda t: len(_export_spans(t)) >= 4 and len(_export_choices(t)) >= 2
        ),
        "exclusive": _first(export_tasks, accepted, lambda t: _export_choices(t) == {EXCLUSIVE}),
        "last": next(t for t in reversed(export_tasks) if t["id"] in accepted),
    }
    report = read_report(out)
    for name, t in picks.items():
        record = records[t["id"]]
        data = t["data"]
        # a correct browser export needs no repair: no relocation hides a wrong offset conversion
        assert [row for row in report if row["task_id"] == t["id"]] == [], name
        assert record.id == data["paragraph_id"], name
        assert record.text == data["text"], name
        assert record.meta["article_id"] == data["article_id"], name
        assert record.meta["ls_annotation_id"] == _live(t)["id"], name
        assert record.labels == [x for x in SCHEMA.topic_names if x in _export_choices(t)], name
        spans = sorted(_export_spans(t), key=lambda v: (v["start"], v["end"]))
        assert len(record.entities) == len(spans), name
        for entity, value in zip(record.entities, spans, strict=True):
            assert record.surface(entity) == value["text"], name
            assert entity.label == value["labels"][0], name
            # Python offsets, exactly the export's UTF-16 offsets converted
            assert (u16(data["text"][: entity.start]), u16(data["text"][: entity.end])) == (
                value["start"],
                value["end"],
            ), name

    # the astral pick really exercised the conversion: some offsets differ between the two counts
    t = picks["astral"]
    spans = sorted(_export_spans(t), key=lambda v: (v["start"], v["end"]))
    assert any(e.start != v["start"] for e, v in zip(records[t["id"]].entities, spans, strict=True))


def test_shared_export_splits_are_grouped_by_article(imported: tuple[Path, str]) -> None:
    out, _ = imported
    records = read_records(out / "records.jsonl", SCHEMA)
    groups = read_groups(out)
    articles = Counter(r.meta["article_id"] for r in records)
    assert max(articles.values()) > 1, "the check needs articles with several paragraphs"
    # every record's article has exactly one side (the assignment is keyed by article, not by paragraph)
    assert set(articles) <= set(groups)
    sides: dict[str, set[str]] = {}
    for record in records:
        sides.setdefault(record.meta["article_id"], set()).add(groups[record.meta["article_id"]])
    assert all(len(s) == 1 for s in sides.values())
    per_split = Counter(groups[r.meta["article_id"]] for r in records)
    summary = json.loads((out / "import_summary.json").read_text(encoding="utf-8"))
    assert {k: v["records"] for k, v in summary["splits"].items()} == {k: per_split[k] for k in summary["splits"]}
    # label balance: every topic reaches every split, in roughly the configured share
    cfg = config().split
    for topic in SCHEMA.topic_names:
        counts = Counter(groups[r.meta["article_id"]] for r in records if topic in r.labels)
        total = sum(counts.values())
        for name, ratio in cfg.ratios.items():
            assert abs(counts[name] / total - ratio) < 0.1, (topic, dict(counts))


def test_shared_export_splits_are_stable(
    export_tasks: list[dict[str, Any]], shared_export: Path, tmp_path: Path
) -> None:
    # 1. a first import of part of the export (the annotations done so far)
    early = tmp_path / "early.json"
    early.write_text(json.dumps(export_tasks[: len(export_tasks) // 2], ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "data"
    cli_import(early, out)
    first = read_groups(out)

    # hand-move some groups to another side: a stable import must keep even assignments it would not make
    moved = dict(first)
    for group in sorted(moved)[::7]:
        moved[group] = {"train": "test", "dev": "train", "test": "dev"}[moved[group]]
    payload = json.loads((out / "splits.json").read_text(encoding="utf-8"))
    payload["groups"] = moved
    (out / "splits.json").write_text(json.dumps(payload), encoding="utf-8")

    # 2. the full export into the same folder: old groups keep their side, new groups get one
    cli_import(shared_export, out)
    second = read_groups(out)
    assert {g: second[g] for g in moved} == moved
    assert len(second) > len(moved)

    # 3. a different seed with the existing splits.json changes nothing already assigned
    cli_import(shared_export, out, "--set", "split.seed=12345")
    third = read_groups(out)
    assert third == second

    # control: that seed on a fresh folder really gives another assignment, so (3) is a real check
    fresh = tmp_path / "fresh"
    cli_import(shared_export, fresh, "--set", "split.seed=12345")
    assert read_groups(fresh) != second
