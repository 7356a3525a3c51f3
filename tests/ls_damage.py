"""Damaged Label Studio exports made from real ones (hypothesis strategies), and the checks a total import must
pass on them. Used by tests/test_import_damaged.py and bench/damaged_exports.py.

A damaged task is a real export task with 1-3 damages: any field the import reads (and anything below it)
replaced by junk, deleted, wrapped in a list (`labels: [["PER"]]`) or turned into a string (`"id": "12"`); span
offsets made negative, reversed, fractional, textual, empty or past the end; lone surrogates put into strings;
annotations and result items duplicated (exact copies, or same id with other content); the whole task replaced.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

from hypothesis import strategies as st

from frontwire.labeling.ls_export import ERROR, REPAIRED, ImportResult
from frontwire.schema import LabelSchema

# The task fields the import reads; damage elsewhere (created_at, drafts, ...) cannot matter.
READ_FIELDS = ("id", "data", "annotations", "predictions", "project")
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"])


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# A fixed catalogue keeps the draw cheap (one integer); hypothesis adds fresh numbers and short texts.
CATALOGUE = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    float("nan"),
    float("inf"),
    "",
    " ",
    "x",
    "12",
    "\ud800",
    [],
    {},
    [[]],
    [None],
    {"": None},
    {"start": "x"},
    ["PER"],
    [["PER"]],
    {"labels": {}},
    _nested(40),
]
# A fresh copy each draw: a later damage may edit inside the junk it placed, and an edited catalogue would make
# hypothesis replay differently (FlakyStrategyDefinition).
JUNK = st.sampled_from(CATALOGUE).map(copy.deepcopy) | st.integers() | st.floats() | st.text(max_size=4)
Path = tuple[str | int, ...]
REPLACE = st.sampled_from(["junk", "delete", "wrap", "stringify", "number"])
OFFSET = st.sampled_from(["negative", "past_end", "float", "string", "reversed", "empty", "shift"])
ENDS, FRACTIONS = st.sampled_from(["start", "end"]), st.sampled_from([0.0, 0.5, 1e-9])
DUPLICATE = st.sampled_from(["exact", "same_id_other_result", "new_id", "result_item"])
STAMPS = st.sampled_from(["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"])


class Pool(list):
    """Real export tasks as JSON texts; a short repr keeps hypothesis from printing a whole export."""

    def __init__(self, name: str, tasks: list[Any]) -> None:
        super().__init__(json.dumps(t) for t in tasks)
        self.name = name

    def __repr__(self) -> str:
        return f"Pool({self.name!r}, {len(self)} tasks)"


# ...and below an annotation, the fields it reads (lead_time, unique_id and the like cannot matter either).
ANNOTATION_FIELDS = ("id", "completed_by", "result", "was_cancelled", "ground_truth", "created_at", "updated_at")


def _paths(task: dict[str, Any]) -> list[tuple[Path, Any]]:
    """Every (path, value) below the read fields, in document order."""
    found: list[tuple[Path, Any]] = []
    stack: list[tuple[Path, Any]] = [((key,), task[key]) for key in reversed(READ_FIELDS) if key in task]
    while stack:
        path, value = stack.pop()
        found.append((path, value))
        if isinstance(value, dict):
            annotation = len(path) == 2 and path[0] == "annotations"
            children = [(k, v) for k, v in value.items() if not annotation or k in ANNOTATION_FIELDS]
        else:
            children = list(enumerate(value)) if isinstance(value, list) else []
        stack.extend(reversed([((*path, key), child) for key, child in children]))
    return found


def _pick(draw, items: list[Any]) -> Any:
    # one integer draw per pick, whatever the list: cheaper than building a st.sampled_from per call
    return items[draw(st.integers(0, len(items) - 1))]


def _parent(task: Any, path: Path) -> Any:
    for key in path[:-1]:
        task = task[key]
    return task


def _replace(draw, task: dict[str, Any]) -> dict[str, Any]:
    paths = _paths(task)
    if not paths:
        return task
    path, value = _pick(draw, paths)
    parent, key = _parent(task, path), path[-1]
    how = draw(REPLACE)
    if how == "delete":
        del parent[key]
    elif how == "wrap":
        parent[key] = [value]
    elif how == "stringify":
        parent[key] = json.dumps(value) if not isinstance(value, str) else value + "x"
    elif how == "number":
        parent[key] = draw(st.integers(-(10**12), 10**12) | st.floats())
    else:
        parent[key] = draw(JUNK)
    return task


def _span_items(task: dict[str, Any]) -> list[dict[str, Any]]:
    annotations = task.get("annotations")
    return [
        item["value"]
        for ann in (annotations if isinstance(annotations, list) else [])
        if isinstance(ann, dict) and isinstance(ann.get("result"), list)
        for item in ann["result"]
        if isinstance(item, dict) and item.get("type") == "labels" and isinstance(item.get("value"), dict)
    ]


def _offsets(draw, task: dict[str, Any]) -> dict[str, Any]:
    values = _span_items(task)
    if not values:
        return _replace(draw, task)
    value = _pick(draw, values)
    start, end = value.get("start"), value.get("end")
    start, end = (start, end) if isinstance(start, int) and isinstance(end, int) else (0, 0)
    how = draw(OFFSET)
    if how == "negative":
        value["start"] = -draw(st.integers(1, 50))
    elif how == "past_end":
        value["start"], value["end"] = start + 10_000, end + 10_000
    elif how == "float":
        value[draw(ENDS)] = start + draw(FRACTIONS)
    elif how == "string":
        value["start"], value["end"] = str(start), str(end)
    elif how == "reversed":
        value["start"], value["end"] = end, start
    elif how == "empty":
        value["end"] = start
        value["text"] = _pick(draw, ["", " ", value.get("text")])
    else:
        shift = draw(st.integers(-60, 60))
        value["start"], value["end"] = start + shift, end + shift
    return task


def _surrogate(draw, task: dict[str, Any]) -> dict[str, Any]:
    strings = [(path, value) for path, value in _paths(task) if isinstance(value, str)]
    if not strings:
        return _replace(draw, task)
    path, value = _pick(draw, strings)
    at = draw(st.integers(0, len(value)))
    _parent(task, path)[path[-1]] = value[:at] + draw(SURROGATES) + value[at:]
    return task


def _duplicate(draw, task: dict[str, Any]) -> dict[str, Any]:
    annotations = task.get("annotations")
    if not isinstance(annotations, list) or not annotations:
        return _replace(draw, task)
    original = _pick(draw, annotations)
    copy = json.loads(json.dumps(original))
    how = draw(DUPLICATE)
    if isinstance(copy, dict) and how != "exact":
        if how == "same_id_other_result":
            copy["result"] = copy.get("result", [])[:1] if isinstance(copy.get("result"), list) else []
        elif how == "new_id":
            copy["id"] = draw(st.integers(10**6, 10**7))
            copy["ground_truth"] = draw(st.booleans())
            copy["updated_at"] = draw(STAMPS)
        elif isinstance(copy.get("result"), list) and copy["result"]:
            copy["result"].append(copy["result"][draw(st.integers(0, len(copy["result"]) - 1))])
            annotations[annotations.index(original)] = copy
            return task
    annotations.insert(draw(st.integers(0, len(annotations))), copy)
    return task


def _whole(draw, task: dict[str, Any]) -> Any:
    return draw(JUNK)


DAMAGES = [_replace, _replace, _replace, _offsets, _offsets, _surrogate, _duplicate, _whole]


def damaged_task(draw, source: str) -> Any:
    task: Any = json.loads(source)
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(task, dict):
            break
        task = DAMAGES[draw(st.integers(0, len(DAMAGES) - 1))](draw, task)
    return task


@st.composite
def damaged_export(draw, pool: Pool, size: int = 20, damaged_share: float = 0.6) -> tuple[list[Any], int]:
    """`size` ± 5 real tasks drawn from `pool` (JSON texts), about `damaged_share` of them damaged; a task may
    also be repeated (a duplicated task). Returns the export and how many tasks were damaged."""
    tasks: list[Any] = []
    damaged = 0
    percent = round(damaged_share * 100)
    for _ in range(draw(st.integers(max(1, size - 5), size + 5))):
        source = pool[draw(st.integers(0, len(pool) - 1))]
        if draw(st.integers(1, 100)) <= percent:
            tasks.append(damaged_task(draw, source))
            damaged += 1
        else:
            tasks.append(json.loads(source))
    if draw(st.integers(1, 10)) == 1:
        tasks.insert(draw(st.integers(0, len(tasks))), json.loads(json.dumps(_pick(draw, tasks))))
    return tasks, damaged


def claimed_spans(task: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(entity type, claimed surface stripped, or None when the export gives none) of every span in the task."""
    claimed = set()
    for value in _span_items(task):
        labels, text = value.get("labels"), value.get("text")
        if isinstance(labels, list) and labels and isinstance(labels[0], str):
            claimed.add((labels[0], text.strip() if isinstance(text, str) else None))
    return claimed


def check_total(tasks: list[Any], result: ImportResult, schema: LabelSchema, text_field: str = "text") -> None:
    """Every task exactly once as a record or one error row; records true to their task; rows writable."""
    assert result.tasks == len(tasks)
    error_rows = Counter(i.position for i in result.issues if i.severity == ERROR)
    assert all(n == 1 for n in error_rows.values()), f"several error rows for one task: {error_rows}"
    assert sorted([*error_rows, *result.record_positions]) == list(range(len(tasks))), "a task lost or doubled"
    assert result.failed_tasks == len(error_rows)
    assert len(result.records) == len(result.record_positions)
    repaired = {i.position for i in result.issues if i.severity == REPAIRED}
    assert repaired <= set(result.record_positions), "a repair row for a task that is not a record"
    for issue in result.issues:
        assert issue.reason and issue.detail and issue.task_id is not None
        line = json.dumps(issue.as_dict(), ensure_ascii=False)
        assert line == line.encode("utf-8", "replace").decode("utf-8"), line.encode("utf-8", "backslashreplace")
    for record, position in zip(result.records, result.record_positions, strict=True):
        task = tasks[position]
        text = task["data"][text_field]
        assert record.text == text
        record.check_schema(schema)
        record.canonical_json().encode("utf-8")  # the records line can be written
        claimed = claimed_spans(task)
        for span in record.entities:
            assert 0 <= span.start < span.end <= len(text)
            surface = text[span.start : span.end]
            assert surface == surface.strip() and surface
            assert span.label in schema.entity_names
            assert (span.label, surface) in claimed or (span.label, None) in claimed, (span, surface, claimed)
