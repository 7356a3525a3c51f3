"""The shapes of a Label Studio JSON export, checked before any field is used, and safe renderings for the report.

label-studio-sdk's own `Annotation` type does not fit: its `result` is `List[Dict[str, Any]]` (result items and
their values, where the damage that matters sits, are not typed at all), it coerces `"12"` to an annotation id
in its default mode, and it is a generated API-client model whose fields follow the server's API, not the export
file. These models are strict (no `"12"` → 12, no `true` → 1) and keep unknown keys (`extra="allow"`), because
an export carries many fields frontwire never reads.

A failed check becomes a `Damage`: the field path inside the task (`annotations[1].result[0].value.labels[0]`)
and a one-line detail, never an exception.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

# Deeper than any real export nests its task data; a bound keeps the record writer away from recursion limits.
MAX_DEPTH = 32


class _Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", protected_namespaces=())


class TaskShape(_Shape):
    """The task fields frontwire reads; `data` is checked field by field (its text field name is configurable)."""

    id: int | None = None
    annotations: list[Any] | None = None  # each element is checked on its own, so the report names it
    predictions: list[Any] | None = None
    project: int | None = None


class AnnotationRank(_Shape):
    """What the annotation policies rank by: when these are readable, a damaged annotation can be ranked."""

    id: int | None = None
    was_cancelled: bool | None = None
    ground_truth: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None

    def recency(self) -> tuple[str, int]:
        return (self.updated_at or self.created_at or "", self.id or 0)


class ResultItem(_Shape):
    type: str
    from_name: str | None = None  # relation items have none
    value: Any = None  # checked against the shape of its kind (choices, labels) once the kind is known


class AnnotationBody(_Shape):
    completed_by: int | None = None
    result: list[ResultItem] | None = None


class ChoicesValue(_Shape):
    choices: list[str]


class LabelsValue(_Shape):
    # start/end/text are checked by span location: a wrong offset is a bad span (configs/labeling.yaml's
    # on_bad_span decides), while unreadable labels make the whole annotation unreadable.
    labels: list[str]


class SpanValue(_Shape):
    start: int
    end: int
    text: str | None = None


@dataclass(frozen=True)
class Damage:
    field: str
    detail: str


def check(model: type[_Shape], value: Any, path: str) -> _Shape | Damage:
    """`model` validated from `value`, or the first problem with its field path below `path`."""
    if not isinstance(value, dict):
        return Damage(path or "task", f"is {describe(value)}, not a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = join_path(path, first["loc"])
        got = "missing" if first["type"] == "missing" else f"got {describe(first.get('input'))}"
        return Damage(where, f"{first['msg']} ({got})")


def join_path(path: str, loc: tuple[int | str, ...]) -> str:
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else str(part))
    return path


def describe(value: Any) -> str:
    """`a list [["PER"]]`, `a str '12'`: the JSON type and a short rendering of a value in a report."""
    kinds = {dict: "an object", list: "a list", str: "a str", bool: "a bool", int: "an int", float: "a float"}
    kind = "null" if value is None else kinds.get(type(value), f"a {type(value).__name__}")
    return kind if value is None else f"{kind} {render(value, 40)}"


def clean(text: str) -> str:
    """Report text that always encodes as UTF-8: a lone surrogate becomes a visible `\\udXXX` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render(value: Any, limit: int = 80) -> str:
    """A short printable rendering of any value (a list or object id too), never raising."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):  # cyclic, too deep, or an int past str()'s digit limit
        text = f"<{type(value).__name__}>"
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_id(value: Any) -> Any:
    """A task or annotation id as the report shows it: ints and strings as given, anything else rendered."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return value
    return clean(value) if isinstance(value, str) else render(value)


def unsafe_value(value: Any, path: str) -> Damage | None:
    """The first string that cannot be written as UTF-8 (a lone surrogate), non-finite number, or too-deep
    nesting below `path`: such a value would break records.jsonl or silently change on the way."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        children: list[tuple[Any, str, int]] = []
        if depth > MAX_DEPTH:
            return Damage(where, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            if not _encodable(item):
                return Damage(where, f"has a lone surrogate (half of a UTF-16 pair): {render(item, 60)}")
        elif isinstance(item, float) and not math.isfinite(item):
            return Damage(where, f"is {item}, not a JSON number")
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not _encodable(key):
                    return Damage(f"{where}.{clean(key)}", "key has a lone surrogate (half of a UTF-16 pair)")
                children.append((child, f"{where}.{render(key, 40)}", depth + 1))
        elif isinstance(item, list):
            children = [(child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item)]
        stack.extend(reversed(children))  # depth first in document order: the report names the first problem
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
