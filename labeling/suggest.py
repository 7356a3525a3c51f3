"""`frontwire labeling suggest`: the paragraphs worth annotating next, pushed with pre-annotations.

archive → paragraphs (frontwire.documents, as `labeling push` reads them)
        → drop paragraphs already annotated in the project and near-duplicates (syndicated copies) of each
          other or of annotated tasks: normalised-text hash, then MinHash/LSH candidates verified by exact
          word-3-shingle Jaccard ≥ 0.8
        → the models (champion versions of the registry, else the newest; or model dirs) score each survivor
        → informativeness: how close the topic scores sit to their per-label thresholds, blended with the NER
          model's token margin (top-1 minus top-2 tag probability of the least certain word)
        → the top N go to Label Studio in bulk (`push_tasks`: chunked, predictions at import time), each with a
          prediction carrying `model_version` (registered name + version) and a score.

Idempotent: `--top N` means "the N most informative unannotated paragraphs are in the project". Ranked
paragraphs that are already tasks (same content hash) count as already there, so running the same command
again imports nothing; after annotators label them (or the models change), a new run fills the queue anew.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.labeling.dedup import JACCARD, near_duplicate_clusters
from frontwire.labeling.informativeness import NER_WEIGHT
from frontwire.labeling.scoring import LoadedModels, score_paragraphs

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------- the command
@dataclass
class SuggestOutcome:
    documents: int
    paragraphs: int
    unique: int
    already_annotated: int
    near_duplicates: int
    near_annotated: int
    scored: int
    selected: list[dict[str, Any]]  # the top N, most informative first: paragraph_id, text, scores
    model_version: str
    push: Any | None = None  # PushOutcome

    def as_dict(self) -> dict[str, Any]:
        push = self.push
        return {
            "documents": self.documents,
            "paragraphs": self.paragraphs,
            "unique_paragraphs": self.unique,
            "already_annotated": self.already_annotated,
            "near_duplicates_dropped": self.near_duplicates,
            "near_duplicates_of_annotated": self.near_annotated,
            "scored": self.scored,
            "selected": len(self.selected),
            "model_version": self.model_version,
            "informativeness": (
                {"max": self.selected[0]["informativeness"], "min": self.selected[-1]["informativeness"]}
                if self.selected
                else None
            ),
            "project_id": push.project_id if push else None,
            "imported": push.imported if push else 0,
            "already_in_project": push.already_there if push else 0,
        }


def project_state(client, title: str, text_field: str = "text") -> tuple[dict[str, bool], dict[str, str]]:
    """{content_hash: annotated?} and {content_hash: text} of the project's tasks ({} when it does not exist)."""
    from frontwire.documents import content_hash
    from frontwire.labeling.client import find_project

    project = find_project(client, title)
    if project is None:
        return {}, {}
    annotated: dict[str, bool] = {}
    texts: dict[str, str] = {}
    for task in client.tasks.list(project=project.id, fields="all"):
        data = dict(task.data or {})
        text = data.get(text_field) if isinstance(data.get(text_field), str) else None
        key = data.get("content_hash") or (content_hash(text) if text else None)
        if key is None:
            continue
        done = bool(getattr(task, "is_labeled", False)) or int(getattr(task, "total_annotations", 0) or 0) > 0
        annotated[key] = annotated.get(key, False) or done
        if text:
            texts[key] = text
    return annotated, texts


def rank_candidates(
    tasks: Sequence[dict[str, Any]],
    annotated: Mapping[str, bool],
    project_texts: Mapping[str, str],
    threshold: float = JACCARD,
    text_field: str = "text",
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The paragraph tasks worth scoring: unique by content, not annotated, not near-duplicates of each other
    or of annotated tasks. A cluster keeps the member already in the project, else its first member."""
    counts = {"unique": 0, "already_annotated": 0, "near_duplicates": 0, "near_annotated": 0}
    unique: dict[str, dict[str, Any]] = {}
    for task in tasks:
        unique.setdefault(task["data"]["content_hash"], task)
    counts["unique"] = len(unique)
    pool = [t for key, t in unique.items() if not annotated.get(key)]
    counts["already_annotated"] = len(unique) - len(pool)
    done_texts = [text for key, text in project_texts.items() if annotated.get(key)]
    texts = [*done_texts, *(t["data"][text_field] for t in pool)]
    roots = near_duplicate_clusters(texts, threshold)
    offset = len(done_texts)
    by_root: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, task in enumerate(pool):
        root = roots[offset + i]
        if root < offset:  # clustered with an annotated task
            counts["near_annotated"] += 1
            continue
        by_root[root].append(task)
    kept = []
    for members in by_root.values():
        in_project = [m for m in members if m["data"]["content_hash"] in annotated]
        kept.append((in_project or members)[0])
        counts["near_duplicates"] += len(members) - 1
    return kept, counts


def suggest(
    documents: Sequence[Any],
    config: Any,
    schema: Any,
    models: LoadedModels,
    top: int,
    client=None,
    project_title: str | None = None,
    chunk_size: int = 500,
    batch_size: int = 32,
    ner_weight: float = NER_WEIGHT,
    max_candidates: int | None = None,
    seed: int = 13,
    dry_run: bool = False,
) -> SuggestOutcome:
    from frontwire.labeling.ls_results import to_label_studio_result
    from frontwire.labeling.push import paragraph_tasks, push_tasks

    tasks = paragraph_tasks(documents, config)
    annotated, project_texts = ({}, {}) if client is None else project_state(client, project_title, config.text_field)
    pool, counts = rank_candidates(tasks, annotated, project_texts, text_field=config.text_field)
    if max_candidates is not None and len(pool) > max_candidates:
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(pool), size=max_candidates, replace=False).tolist())
        pool = [pool[i] for i in keep]
    texts = [t["data"][config.text_field] for t in pool]
    log.info("suggest_scoring paragraphs=%d unique=%d pool=%d", len(tasks), counts["unique"], len(pool))
    scored = score_paragraphs(models, texts, batch_size, ner_weight)
    value = np.round(scored.informativeness, 6)
    order = sorted(range(len(pool)), key=lambda i: (-value[i], pool[i]["data"]["paragraph_id"]))[:top]
    model_version = models.model_version
    selected, chosen_tasks, predictions = [], [], {}
    for rank, i in enumerate(order, start=1):
        task, text = pool[i], texts[i]
        pid = task["data"]["paragraph_id"]
        extra = {"informativeness": round(float(value[i]), 4), "suggest_rank": rank}
        if scored.topic is not None:
            extra["topic_uncertainty"] = round(float(scored.topic[i]), 4)
        if scored.ner is not None:
            extra["ner_uncertainty"] = round(float(scored.ner[i]), 4)
        chosen_tasks.append({**task, "data": {**task["data"], **extra}})
        predictions[pid] = {
            "model_version": model_version,
            # the prediction's score is the model's confidence, so Label Studio's "prediction score" column,
            # sorted ascending, lists the most informative tasks first
            "score": round(1.0 - float(value[i]), 4),
            "result": to_label_studio_result(
                text,
                scored.labels[i],
                scored.entities[i],
                topics_control=config.topics_control,
                entities_control=config.entities_control,
                to_name=config.text_field,
                label_scores=scored.label_scores[i] or None,
            ),
        }
        selected.append(
            {
                "paragraph_id": pid,
                "text": text,
                **extra,
                "labels": scored.labels[i],
                "scores": scored.label_scores[i],
                "entities": scored.entities[i],
            }
        )
    outcome = SuggestOutcome(
        len(documents),
        len(tasks),
        counts["unique"],
        counts["already_annotated"],
        counts["near_duplicates"],
        counts["near_annotated"],
        len(pool),
        selected,
        model_version,
    )
    if not dry_run and client is not None and chosen_tasks:
        # project_state listed the project's tasks moments ago: no second listing of a project of any size
        outcome.push = push_tasks(client, chosen_tasks, schema, config, project_title, predictions, chunk_size,
                                  in_project=set(annotated))
    return outcome


def write_suggestions(path: Path, selected: Sequence[Mapping[str, Any]]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in selected:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
