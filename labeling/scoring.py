"""The models that rank `labeling suggest` candidates: loading them, and one scoring pass over paragraphs that
yields both the pre-annotations and each paragraph's informativeness."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frontwire.labeling.informativeness import (
    NER_WEIGHT,
    MarginRecorder,
    informativeness,
    margin_uncertainty,
    topic_uncertainty,
)

log = logging.getLogger(__name__)


@dataclass
class LoadedModels:
    topics: Any | None  # frontwire.predictor.TopicModel
    ner: Any | None  # frontwire.predictor.EntityModel
    versions: dict[str, str] = field(default_factory=dict)  # kind -> "name:vN" (or the model dir's name)

    @property
    def model_version(self) -> str:
        return "+".join(self.versions[k] for k in ("classifier", "ner") if k in self.versions)


def load_models(
    classifier: str | None = None,
    ner: str | None = None,
    alias: str = "champion",
    tracking_uri: str | None = None,
    device: str = "auto",
) -> LoadedModels:
    """Model dirs or `models:/…` URIs when given; else the registry's `alias` version (fallback: newest)."""
    from frontwire.model_sources import resolve_model
    from frontwire.predictor import EntityModel, TopicModel
    from frontwire.train.settings import load_classifier_config, load_ner_config

    names = {
        "classifier": load_classifier_config().mlflow.registered_model,
        "ner": load_ner_config().mlflow.registered_model,
    }
    explicit = classifier is not None or ner is not None
    loaded = LoadedModels(None, None)
    for kind, source in (("classifier", classifier), ("ner", ner)):
        if explicit and source is None:
            continue
        ref = resolve_model(source, kind, names[kind], alias=alias, tracking_uri=tracking_uri)
        if ref is None:
            log.warning("suggest_no_model kind=%s name=%s", kind, names[kind])
            continue
        model = (TopicModel if kind == "classifier" else EntityModel).load(ref.model_dir, device)
        setattr(loaded, "topics" if kind == "classifier" else "ner", model)
        loaded.versions[kind] = f"{ref.name}:v{ref.version}" if ref.version else ref.name
        log.info("suggest_model kind=%s version=%s dir=%s", kind, loaded.versions[kind], ref.model_dir)
    if loaded.topics is None and loaded.ner is None:
        raise ValueError(
            "no model to suggest with: train and register one (`frontwire run`), or pass --classifier/--ner model dirs"
        )
    return loaded


@dataclass
class Scored:
    labels: list[list[str]]
    label_scores: list[dict[str, float]]
    entities: list[list[dict[str, Any]]]
    topic: np.ndarray | None
    ner: np.ndarray | None
    informativeness: np.ndarray


def score_paragraphs(
    models: LoadedModels, texts: Sequence[str], batch_size: int = 32, ner_weight: float = NER_WEIGHT
) -> Scored:
    """One pass of each model over `texts`: predictions for the pre-annotations plus the uncertainties."""
    from frontwire.predictor import EntityModel
    from frontwire.windows import encode_windows

    n = len(texts)
    labels: list[list[str]] = [[] for _ in range(n)]
    label_scores: list[dict[str, float]] = [{} for _ in range(n)]
    entities: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    topic = ner = None
    if models.topics is not None and n:
        tm = models.topics
        scores = tm.scores(list(texts), batch_size)
        thresholds = [tm.thresholds.get(label, 0.5) for label in tm.meta.labels]
        topic = topic_uncertainty(scores, thresholds)
        for i, row in enumerate(scores):
            labels[i] = tm.decode(row)
            label_scores[i] = {label: round(float(s), 4) for label, s in zip(tm.meta.labels, row, strict=True)}
    if models.ner is not None and n:
        em = models.ner
        windows = encode_windows(em.tokenizer, list(texts), em.meta.max_length, em.meta.stride)
        first_tokens: dict[tuple[int, ...], list[int]] = {}
        for ids, word_ids in zip(windows.input_ids, windows.word_ids, strict=True):
            seen, positions = set(), []
            for position, word in enumerate(word_ids):
                if word is not None and word not in seen:
                    seen.add(word)
                    positions.append(position)
            first_tokens[tuple(ids)] = positions
        recorder = MarginRecorder(em.forward, first_tokens)
        entities = EntityModel(em.meta, em.tokenizer, recorder).entities(list(texts), batch_size)
        per_text: list[list[float]] = [[] for _ in range(n)]
        for ids, text_index in zip(windows.input_ids, windows.text_index, strict=True):
            margin = recorder.margins.get(tuple(ids))
            if margin is not None:
                per_text[text_index].append(margin)
        ner = np.array([margin_uncertainty(m) for m in per_text])
    return Scored(labels, label_scores, entities, topic, ner, informativeness(topic, ner, ner_weight))
