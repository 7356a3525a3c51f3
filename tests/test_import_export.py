"""Label Studio JSON export → records + error report, on real-format tasks written for these tests (built by
`ls_export_tasks`): annotation policies, cancelled and empty tasks, stale and misaligned spans, UTF-16 offsets,
overlaps, unknown labels, exclusivity, duplicates, ids, and a mixed export where every task is accounted for.
The real shared export through the CLI is in test_import_shared_export.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ls_export_tasks import (
    ENT,
    EXCLUSIVE,
    SCHEMA,
    TOPICS,
    UNKNOWN_ENTITY,
    UNKNOWN_TOPIC,
    annotation,
    by_task,
    choices,
    config,
    errors,
    prediction,
    repairs,
    run,
    span,
    surfaces,
    task,
)

from frontwire.labeling.ls_export import convert_export

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
