"""Label Studio JSON export → records + error report, on real-format tasks.

The small tasks below copy the *shape* of a browser export (task fields, annotation fields, result items
with UTF-16 offsets) with texts written for these tests. Offsets are computed here independently of
frontwire (`u16`), so a conversion bug in frontwire cannot cancel itself out. The second half runs the
real CLI on the real shared export and spot-checks records against the export.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from frontwire.labeling.ls_export import ERROR, REPAIRED, ImportResult, convert_export
from frontwire.labeling.settings import LabelingConfig, load_labeling_config
from frontwire.paths import shared_dir
from frontwire.records import Record, read_records
from frontwire.schema import LabelSchema, load_schema

SCHEMA = load_schema()
TOPICS = [t for t in SCHEMA.topic_names if t not in SCHEMA.exclusive_topics]  # non-exclusive topics
EXCLUSIVE = SCHEMA.exclusive_topics[0]
ENT = SCHEMA.entity_names
assert len(TOPICS) >= 3 and len(ENT) >= 2, "the tests below need 3 non-exclusive topics and 2 entity types"
UNKNOWN_TOPIC = "not-a-topic-in-any-schema"
UNKNOWN_ENTITY = "NOT_AN_ENTITY_TYPE"


# --- building real-format export tasks ---


def u16(text: str) -> int:
    """Length in UTF-16 code units, as a browser counts (independent of frontwire.offsets)."""
    return len(text.encode("utf-16-le")) // 2


def choices(*labels: str) -> dict[str, Any]:
    return {
        "id": f"c{'-'.join(labels)}"[:10],
        "from_name": "topics",
        "to_name": "text",
        "type": "choices",
        "origin": "manual",
        "value": {"choices": list(labels)},
    }


def span(
    text: str,
    surface: str,
    label: str,
    *,
    occurrence: int = 0,
    shift: int = 0,
    python_offsets: bool = False,
    claimed: str | None = None,
) -> dict[str, Any]:
    """A `labels` result for the `occurrence`-th `surface` in `text`, with browser (UTF-16) offsets.

    `shift` moves the offsets (a stale span), `python_offsets` writes code-point offsets instead of UTF-16
    units, `claimed` overrides the `value.text` the export claims was selected.
    """
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(surface, start + 1)
    end = start + len(surface)
    if not python_offsets:
        start, end = u16(text[:start]), u16(text[:end])
    return {
        "id": f"s{start}{label}"[:10],
        "from_name": "entities",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start + shift, "end": end + shift, "text": claimed or surface, "labels": [label]},
    }


def annotation(
    ann_id: int,
    task_id: int,
    result: Sequence[dict[str, Any]],
    *,
    updated: str = "2024-03-01T10:00:00",
    cancelled: bool = False,
    ground_truth: bool = False,
    by: int = 1,
) -> dict[str, Any]:
    stamp = f"{updated}.000000Z"
    return {
        "id": ann_id,
        "completed_by": by,
        "result": list(result),
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "created_at": stamp,
        "updated_at": stamp,
        "draft_created_at": None,
        "lead_time": 12.5,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"uuid-{ann_id}",
        "import_id": None,
        "last_action": None,
        "bulk_created": False,
        "task": task_id,
        "project": 3,
        "updated_by": None,
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
    }


def prediction(pred_id: int, task_id: int, result: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": pred_id,
        "model_version": "tfidf-2024-05",
        "score": 0.71,
        "result": list(result),
        "task": task_id,
        "project": 3,
        "created_ago": "1 day",
        "cluster": None,
        "neighbors": None,
        "mislabeling": 0.0,
        "model": None,
        "model_run": None,
    }


def task(
    task_id: int,
    text: str,
    annotations: Sequence[dict[str, Any]] = (),
    *,
    predictions: Sequence[dict[str, Any]] = (),
    paragraph_id: str | None = None,
    article_id: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"text": text}
    if paragraph_id is not None:
        data["paragraph_id"] = paragraph_id
    data["article_id"] = article_id or f"art-{task_id}"
    data["source"] = "testwire"
    data["published"] = "2024-03-01"
    cancelled = sum(1 for a in annotations if a["was_cancelled"])
    return {
        "id": task_id,
        "annotations": list(annotations),
        "drafts": [],
        "predictions": list(predictions),
        "data": data,
        "meta": {},
        "created_at": "2024-03-01T09:00:00.000000Z",
        "updated_at": "2024-03-01T09:00:00.000000Z",
        "allow_skip": True,
        "inner_id": task_id,
        "total_annotations": len(annotations) - cancelled,
        "cancelled_annotations": cancelled,
        "total_predictions": len(predictions),
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "project": 3,
        "updated_by": None,
        "comment_authors": [],
    }


def config(*overrides: str) -> LabelingConfig:
    return load_labeling_config(None, overrides)


def run(tasks: list[dict[str, Any]], *overrides: str, schema: LabelSchema = SCHEMA) -> ImportResult:
    result = convert_export(tasks, schema, config(*overrides))
    check_accounting(tasks, result)
    for record in result.records:
        record.check_schema(schema)
        assert record.text == next(t for t in tasks if t["id"] == record.meta["ls_task_id"])["data"]["text"]
    return result


def check_accounting(tasks: list[dict[str, Any]], result: ImportResult) -> None:
    """Every task is exactly one record or one error task; every report row names its task."""
    assert result.tasks == len(tasks)
    errors = [i for i in result.issues if i.severity == ERROR]
    error_tasks = [i.task_id for i in errors]
    record_tasks = [r.meta["ls_task_id"] for r in result.records]
    assert len(set(error_tasks)) == len(error_tasks), "one error row per failed task"
    assert len(result.records) + len(error_tasks) == len(tasks)
    assert result.failed_tasks == len(error_tasks)
    assert sorted(record_tasks + error_tasks) == sorted(t["id"] for t in tasks)
    for issue in result.issues:
        assert issue.task_id is not None and issue.task_id in {t["id"] for t in tasks}
        assert issue.reason and issue.detail
        assert issue.severity in (ERROR, REPAIRED)
    summary = result.summary()
    assert summary["records"] + summary["errors"] == summary["tasks"] == len(tasks)


def by_task(result: ImportResult) -> dict[Any, Record]:
    return {r.meta["ls_task_id"]: r for r in result.records}


def errors(result: ImportResult) -> dict[Any, str]:
    return {i.task_id: i.reason for i in result.issues if i.severity == ERROR}


def repairs(result: ImportResult) -> list[tuple[Any, str]]:
    return [(i.task_id, i.reason) for i in result.issues if i.severity == REPAIRED]


def surfaces(record: Record) -> list[tuple[str, str]]:
    return [(record.surface(s), s.label) for s in record.entities]


# --- several annotations on one task ---

MULTI = "Zelensky met Macron in Paris as Kharkiv came under fire again."


def multi_annotation_task() -> dict[str, Any]:
    """Three annotators disagree; the oldest is ground truth, the newest is cancelled."""
    a, b, c = TOPICS[:3]
    return task(
        10,
        MULTI,
        [
            annotation(
                101,
                10,
                [choices(a, b), span(MULTI, "Zelensky", ENT[0]), span(MULTI, "Paris", ENT[1])],
                updated="2024-03-01T10:00:00",
                ground_truth=True,
                by=1,
            ),
            annotation(
                102,
                10,
                [choices(a), span(MULTI, "Zelensky", ENT[0]), span(MULTI, "Kharkiv", ENT[1])],
                updated="2024-03-02T10:00:00",
                by=2,
            ),
            annotation(103, 10, [choices(b, c), span(MULTI, "Paris", ENT[1])], updated="2024-03-03T10:00:00", by=3),
            annotation(104, 10, [], updated="2024-03-04T10:00:00", cancelled=True, by=4),
        ],
        paragraph_id="multi-p000",
    )


def test_policy_latest_takes_newest_live_annotation() -> None:
    result = run([multi_annotation_task()], "annotation_policy=latest")
    record = by_task(result)[10]
    b, c = TOPICS[1], TOPICS[2]
    assert record.labels == [t for t in SCHEMA.topic_names if t in {b, c}]
    assert surfaces(record) == [("Paris", ENT[1])]
    assert record.meta["ls_annotation_id"] == 103  # not the newer cancelled 104
    assert record.meta["annotator"] == 3


def test_policy_ground_truth_takes_the_marked_annotation() -> None:
    result = run([multi_annotation_task()], "annotation_policy=ground_truth")
    record = by_task(result)[10]
    a, b = TOPICS[:2]
    assert record.labels == [t for t in SCHEMA.topic_names if t in {a, b}]
    assert surfaces(record) == [("Zelensky", ENT[0]), ("Paris", ENT[1])]
    assert record.meta["ls_annotation_id"] == 101


def test_policy_ground_truth_without_a_mark_falls_back_to_latest() -> None:
    t = multi_annotation_task()
    for a in t["annotations"]:
        a["ground_truth"] = False
    record = by_task(run([t], "annotation_policy=ground_truth"))[10]
    assert record.meta["ls_annotation_id"] == 103


def test_policy_majority_keeps_what_more_than_half_chose() -> None:
    result = run([multi_annotation_task()], "annotation_policy=majority")
    record = by_task(result)[10]
    a, b, c = TOPICS[:3]
    # votes among the 3 live annotations: a 2, b 2, c 1; Zelensky 2, Paris 2, Kharkiv 1
    assert record.labels == [t for t in SCHEMA.topic_names if t in {a, b}]
    assert c not in record.labels
    assert surfaces(record) == [("Zelensky", ENT[0]), ("Paris", ENT[1])]
    assert sorted(record.meta["ls_annotation_id"]) == [101, 102, 103]
    assert sorted(record.meta["annotator"]) == [1, 2, 3]


def test_policy_majority_with_one_live_annotation_is_that_annotation() -> None:
    t = multi_annotation_task()
    t["annotations"] = [t["annotations"][2], t["annotations"][3]]  # 103 live, 104 cancelled
    record = by_task(run([t], "annotation_policy=majority"))[10]
    assert surfaces(record) == [("Paris", ENT[1])]


# --- cancelled, unlabeled ---


def test_cancelled_and_unlabeled_tasks_are_reported_not_negative() -> None:
    text_a = "Air raid sirens sounded across the capital before dawn."
    text_b = "The regional governor said two shelters were opened."
    text_c = "Grain ships left the port under a new corridor deal."
    pred = prediction(900, 23, [choices(TOPICS[0])])
    tasks = [
        task(21, text_a, [annotation(210, 21, [], cancelled=True)]),
        task(
            22,
            text_b,
            [
                annotation(220, 22, [], cancelled=True),
                annotation(221, 22, [choices(TOPICS[0])], cancelled=True, updated="2024-03-02T00:00:00"),
            ],
        ),
        task(23, text_c, predictions=[pred]),
        task(24, text_c.replace("Grain", "Fertiliser")),
    ]
    result = run(tasks)
    assert result.records == []
    assert errors(result) == {21: "cancelled", 22: "cancelled", 23: "unlabeled", 24: "unlabeled"}
    details = {i.task_id: i.detail for i in result.issues}
    assert "prediction" in details[23]  # the report says predictions exist but are not labels
    assert "prediction" not in details[24]


def test_empty_annotation_is_a_negative_record() -> None:
    """A submitted annotation with no result is 'no topic, no entity', which is a real label."""
    text = "Officials gave no further details on Wednesday."
    record = by_task(run([task(30, text, [annotation(300, 30, [])])]))[30]
    assert record.labels == [] and record.entities == []


# --- spans whose text does not match the offsets ---

STALE = "Russian forces shelled Kherson overnight, the mayor of Kherson said on Telegram."


def stale_task(task_id: int = 40) -> dict[str, Any]:
    return task(
        task_id,
        STALE,
        [
            annotation(
                400,
                task_id,
                [
                    choices(TOPICS[0]),
                    span(STALE, "Kherson", ENT[1], shift=3),  # offsets a few characters off: relocated nearby
                    span(STALE, "Telegram", ENT[0]),
                ],
            )
        ],
        paragraph_id="stale-p000",
    )


def test_misaligned_span_is_relocated_nearby() -> None:
    result = run([stale_task()])
    record = by_task(result)[40]
    first = STALE.index("Kherson")
    assert (record.entities[0].start, record.entities[0].end) == (first, first + len("Kherson"))
    assert surfaces(record) == [("Kherson", ENT[1]), ("Telegram", ENT[0])]
    assert (40, "relocated_span") in repairs(result)


BAD = "A drone struck a fuel depot near the border, officials said."


def bad_span_task(task_id: int = 41) -> dict[str, Any]:
    return task(
        task_id,
        BAD,
        [
            annotation(
                410,
                task_id,
                [
                    choices(TOPICS[0]),
                    span(BAD, "drone", ENT[1]),
                    span(BAD, "depot", ENT[0], claimed="Belgorod"),  # claimed text is nowhere in the paragraph
                ],
            )
        ],
    )


def test_bad_span_drops_the_task_under_drop_task() -> None:
    result = run([bad_span_task(), stale_task()], "on_bad_span=drop_task")
    assert errors(result) == {41: "bad_span"}
    assert "Belgorod" in next(i.detail for i in result.issues if i.task_id == 41)
    assert set(by_task(result)) == {40}


def test_bad_span_drops_only_the_span_under_drop_span() -> None:
    result = run([bad_span_task()], "on_bad_span=drop_span")
    record = by_task(result)[41]
    assert surfaces(record) == [("drone", ENT[1])]
    assert record.labels == [TOPICS[0]]
    assert (41, "dropped_span") in repairs(result)
    assert errors(result) == {}


def test_span_far_from_its_offsets_is_not_relocated() -> None:
    text = "Kyiv said talks would resume. " + "Nothing else happened that day. " * 4 + "Kyiv denied it."
    far = span(text, "Kyiv", ENT[1], occurrence=1)
    far["value"]["start"], far["value"]["end"] = 60, 64  # wrong place, both real occurrences >40 chars away
    assert abs(text.index("Kyiv") - 60) > 40 and abs(text.rindex("Kyiv") - 60) > 40
    result = run([task(42, text, [annotation(420, 42, [far])])])
    assert errors(result) == {42: "bad_span"}


def test_span_with_surrounding_whitespace_is_trimmed() -> None:
    text = "Talks in Istanbul ended without a deal."
    item = span(text, " Istanbul ", ENT[1])
    record = by_task(run([task(43, text, [annotation(430, 43, [item])])]))[43]
    assert surfaces(record) == [("Istanbul", ENT[1])]


# --- UTF-16 offsets after astral characters ---

ASTRAL = "🇺🇦 Odesa: Shahed drones 🔥 hit the port at night, said Oleh Kiper 🙏 — Київ confirmed."


def test_utf16_offsets_after_flags_and_emoji_become_python_offsets() -> None:
    items = [span(ASTRAL, "Odesa", ENT[1]), span(ASTRAL, "Oleh Kiper", ENT[0]), span(ASTRAL, "Київ", ENT[1])]
    # the export offsets really are UTF-16 (they differ from code-point offsets after the flag)
    assert items[0]["value"]["start"] == ASTRAL.index("Odesa") + 2
    assert items[2]["value"]["start"] == ASTRAL.index("Київ") + 4
    result = run([task(50, ASTRAL, [annotation(500, 50, [choices(TOPICS[0]), *items])])])
    record = by_task(result)[50]
    assert [(s.start, s.end) for s in record.entities] == [
        (ASTRAL.index(w), ASTRAL.index(w) + len(w)) for w in ("Odesa", "Oleh Kiper", "Київ")
    ]
    assert surfaces(record) == [("Odesa", ENT[1]), ("Oleh Kiper", ENT[0]), ("Київ", ENT[1])]
    assert record.text == ASTRAL
    assert repairs(result) == []  # a correct UTF-16 export needs no repair


def test_python_offsets_in_an_astral_text_are_accepted_and_reported() -> None:
    """Exports written by scripts (not the browser) sometimes carry code-point offsets."""
    item = span(ASTRAL, "Oleh Kiper", ENT[0], python_offsets=True)
    result = run([task(51, ASTRAL, [annotation(510, 51, [item])])])
    assert surfaces(by_task(result)[51]) == [("Oleh Kiper", ENT[0])]
    assert (51, "python_offsets") in repairs(result)


# --- overlapping spans ---

OVERLAP = "The UN Security Council met after strikes on Zaporizhzhia."


def overlap_task() -> dict[str, Any]:
    return task(
        60,
        OVERLAP,
        [
            annotation(
                600,
                60,
                [
                    span(OVERLAP, "UN", ENT[1]),
                    span(OVERLAP, "UN Security Council", ENT[0]),
                    span(OVERLAP, "Zaporizhzhia", ENT[1]),
                ],
            )
        ],
    )


def test_overlap_keep_longest() -> None:
    result = run([overlap_task()], "on_overlap=keep_longest")
    assert surfaces(by_task(result)[60]) == [("UN Security Council", ENT[0]), ("Zaporizhzhia", ENT[1])]
    assert (60, "overlap_dropped") in repairs(result)


def test_overlap_error() -> None:
    result = run([overlap_task()], "on_overlap=error")
    assert errors(result) == {60: "overlapping_spans"}
    assert result.records == []


# --- unknown labels, empty text, exclusivity ---


def test_unknown_labels_and_empty_text_are_errors() -> None:
    text = "Ceasefire talks stalled again on Friday."
    tasks = [
        task(70, text, [annotation(700, 70, [choices(TOPICS[0], UNKNOWN_TOPIC)])]),
        task(71, text + " ", [annotation(710, 71, [span(text, "Ceasefire", UNKNOWN_ENTITY)])]),
        task(72, "", [annotation(720, 72, [choices(TOPICS[0])])]),
        task(73, "  \n\t ", [annotation(730, 73, [choices(TOPICS[0])])]),
        task(74, "Valid paragraph about a convoy.", [annotation(740, 74, [choices(TOPICS[1])])]),
    ]
    del tasks[4]["data"]["text"]
    result = run(tasks)
    assert errors(result) == {
        70: "unknown_label",
        71: "unknown_label",
        72: "empty_text",
        73: "empty_text",
        74: "no_text",
    }
    details = {i.task_id: i.detail for i in result.issues}
    assert UNKNOWN_TOPIC in details[70] and UNKNOWN_ENTITY in details[71]


def test_exclusive_topic_with_another_topic_is_a_conflict() -> None:
    text = "Subscribe for updates. Missiles hit Dnipro overnight."
    tasks = [
        task(80, text, [annotation(800, 80, [choices(EXCLUSIVE, TOPICS[0])])]),
        task(81, "Sign up to our morning newsletter.", [annotation(810, 81, [choices(EXCLUSIVE)])]),
    ]
    result = run(tasks)
    assert errors(result) == {80: "exclusive_conflict"}
    assert by_task(result)[81].labels == [EXCLUSIVE]


def test_ambiguous_span_and_foreign_results() -> None:
    text = "Wagner fighters left Bakhmut, a spokesman said."
    multi = span(text, "Wagner", ENT[0])
    multi["value"]["labels"] = [ENT[0], ENT[1]]
    other = {
        "id": "r1",
        "from_name": "sentiment",
        "to_name": "text",
        "type": "rating",
        "value": {"rating": 3},
    }
    result = run(
        [
            task(90, text, [annotation(900, 90, [multi])]),
            task(91, text.replace("Bakhmut", "Soledar"), [annotation(910, 91, [choices(TOPICS[2]), other])]),
        ]
    )
    assert errors(result) == {90: "ambiguous_span"}
    assert by_task(result)[91].labels == [TOPICS[2]]
    assert (91, "ignored_result") in repairs(result)


# --- duplicates ---

DUP = "Poland closed a border crossing after protests by truckers."


def test_duplicate_tasks() -> None:
    ann = [choices(TOPICS[1]), span(DUP, "Poland", ENT[1])]
    tasks = [
        task(100, DUP, [annotation(1000, 100, ann)], paragraph_id="pl-1-p004", article_id="pl-1"),
        # the same paragraph imported twice (same paragraph_id, same text)
        task(101, DUP, [annotation(1010, 101, ann)], paragraph_id="pl-1-p004", article_id="pl-1"),
        # syndicated copy in another article, whitespace differs
        task(
            102,
            DUP.replace(" ", "  ", 1) + "\n",
            [annotation(1020, 102, [choices(TOPICS[2])])],
            paragraph_id="pl-2-p001",
            article_id="pl-2",
        ),
        # same paragraph id, different text: still one id, one record
        task(103, "Another paragraph entirely.", [annotation(1030, 103, [])], paragraph_id="pl-1-p004"),
    ]
    result = run(tasks)
    assert set(by_task(result)) == {100}
    assert errors(result) == {101: "duplicate_id", 102: "duplicate_text", 103: "duplicate_id"}
    details = {i.task_id: i.detail for i in result.issues}
    assert "DIFFER" in details[102]  # the copy was labelled differently: worth a look
    assert by_task(result)[100].id == "pl-1-p004"


def test_deduplicate_text_off_keeps_copies_with_distinct_ids() -> None:
    tasks = [
        task(110, DUP, [annotation(1100, 110, [])], paragraph_id="a-p000"),
        task(111, DUP, [annotation(1110, 111, [])], paragraph_id="b-p000"),
    ]
    result = run(tasks, "deduplicate_text=false")
    assert sorted(r.id for r in result.records) == ["a-p000", "b-p000"]


def test_record_id_and_meta() -> None:
    text = "The Pentagon announced a new aid package."
    with_pid = task(
        120,
        text,
        [annotation(1200, 120, [choices(TOPICS[1])], by=7)],
        paragraph_id="nyt-9-p002",
        article_id="nyt-9",
    )
    without_pid = task(121, text.replace("new", "further"), [annotation(1210, 121, [])])
    result = run([with_pid, without_pid])
    records = by_task(result)
    assert records[120].id == "nyt-9-p002"
    assert records[121].id == "121"  # no paragraph_id: the Label Studio task id
    assert records[120].meta == {
        "paragraph_id": "nyt-9-p002",
        "article_id": "nyt-9",
        "source": "testwire",
        "published": "2024-03-01",
        "annotator": 7,
        "ls_task_id": 120,
        "ls_annotation_id": 1200,
        "ls_project": 3,
    }


def test_a_mixed_export_accounts_for_every_task() -> None:
    """All the cases above in one export: each task is a record or exactly one error row."""
    tasks = [
        multi_annotation_task(),
        stale_task(),
        bad_span_task(),
        overlap_task(),
        task(21, "Sirens again in the north.", [annotation(210, 21, [], cancelled=True)]),
        task(23, "Unlabeled with a model guess.", predictions=[prediction(1, 23, [choices(TOPICS[0])])]),
        task(72, " ", [annotation(720, 72, [])]),
        task(80, "Donate now. Shelling hit Kharkiv.", [annotation(800, 80, [choices(EXCLUSIVE, TOPICS[0])])]),
        task(100, DUP, [annotation(1000, 100, [])], paragraph_id="d-p0"),
        task(101, DUP, [annotation(1010, 101, [])], paragraph_id="d-p0"),
        task(50, ASTRAL, [annotation(500, 50, [span(ASTRAL, "Київ", ENT[1])])]),
        "not a task at all",  # type: ignore[list-item]
    ]
    result = convert_export(tasks, SCHEMA, config())
    assert result.tasks == len(tasks)
    errs = errors(result)
    assert len(result.records) + len(errs) == len(tasks)
    assert Counter(errs.values()) == Counter(
        {
            "bad_span": 1,
            "cancelled": 1,
            "unlabeled": 1,
            "empty_text": 1,
            "exclusive_conflict": 1,
            "duplicate_id": 1,
            "malformed_task": 1,
        }
    )
    assert "#11" in errs  # the malformed entry is named by its position
    assert sorted(by_task(result)) == [10, 40, 50, 60, 100]


# --- the real shared export through the CLI ---


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
