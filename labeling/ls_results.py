"""Model output → Label Studio `result` items (pre-annotations), in the editor's UTF-16 offsets."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from frontwire.offsets import py_span_to_utf16


def to_label_studio_result(
    text: str,
    labels: Sequence[str],
    entities: Sequence[Mapping[str, Any]],
    *,
    topics_control: str,
    entities_control: str,
    to_name: str,
    label_scores: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """`entities` carry Python offsets (`start`, `end`, `label`, optional `score`)."""
    result: list[dict[str, Any]] = []
    if labels:
        item: dict[str, Any] = {
            "id": uuid.uuid4().hex[:10],
            "from_name": topics_control,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": list(labels)},
        }
        if label_scores:
            item["score"] = round(min(float(label_scores[label]) for label in labels), 4)
        result.append(item)
    for entity in entities:
        start, end = py_span_to_utf16(text, int(entity["start"]), int(entity["end"]))
        item = {
            "id": uuid.uuid4().hex[:10],
            "from_name": entities_control,
            "to_name": to_name,
            "type": "labels",
            "value": {
                "start": start,
                "end": end,
                "text": text[int(entity["start"]) : int(entity["end"])],
                "labels": [entity["label"]],
            },
        }
        if entity.get("score") is not None:
            item["score"] = round(float(entity["score"]), 4)
        result.append(item)
    return result
