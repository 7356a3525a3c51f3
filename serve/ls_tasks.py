"""Label Studio tasks ↔ frontwire predictions for the ML backend (serve/labelstudio.py): project ids, the
project's controls, a task's text, and one prediction as the project's result items."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from frontwire.labeling.ls_controls import Controls, find_controls
from frontwire.labeling.ls_results import to_label_studio_result


def project_id(value: Any) -> int | None:
    """Label Studio names a project "<id>.<created timestamp>" in ML calls and as an object in webhooks."""
    if isinstance(value, dict):
        value = value.get("id")
    try:
        return int(str(value).split(".")[0])
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=64)
def project_controls(label_config: str, topics: tuple[str, ...], entities: tuple[str, ...]) -> Controls:
    return find_controls(label_config, topics, entities)


def task_result(
    text: str, prediction: dict[str, Any], controls: Controls, thresholds: dict[str, float]
) -> tuple[list[dict[str, Any]], float]:
    """Label Studio result items for one task, and the prediction's overall score (its weakest item).

    Labels and entity types the project does not offer are left out, not renamed; a single-choice control
    gets the best-scoring label only.
    """
    topics, entities = controls.topics, controls.entities
    scores = prediction.get("scores", {})
    items: list[dict[str, Any]] = []
    if topics is not None:
        labels = [label for label in prediction.get("labels", []) if label in topics.values]
        if topics.single and len(labels) > 1:
            labels = [max(labels, key=lambda label: scores[label])]
        items += to_label_studio_result(
            text,
            [topics.values[label] for label in labels],
            [],
            topics_control=topics.name,
            entities_control="",
            to_name=topics.to_name,
            label_scores={topics.values[label]: scores[label] for label in labels},
        )
    if entities is not None:
        spans = [
            {**e, "label": entities.values[e["label"]]}
            for e in prediction.get("entities", [])
            if e["label"] in entities.values
        ]
        items += to_label_studio_result(
            text, [], spans, topics_control="", entities_control=entities.name, to_name=entities.to_name
        )
    confidences = [item["score"] for item in items if "score" in item]
    if confidences:
        return items, round(min(confidences), 4)
    # nothing predicted: how sure the model is that no topic applies
    margin = [1.0 - scores[label] for label in scores if label in thresholds]
    return items, round(min(margin), 4) if margin else 1.0


def task_text(task: dict[str, Any], keys: tuple[str, ...], max_chars: int) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        raise ValueError("task has no data object")
    text = next((data[k] for k in keys if k in data), None)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"task data has no text under {list(keys)}")
    if len(text) > max_chars:
        raise ValueError(f"text has {len(text)} characters; labelstudio.max_chars={max_chars}")
    text.encode("utf-8")  # unpaired surrogates raise UnicodeEncodeError (a ValueError)
    return text
