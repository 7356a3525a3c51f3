"""Self-training: a teacher classifier pseudo-labels unlabeled archive paragraphs for the student's train set.

Only paragraphs the teacher is sure about on *every* label join: each label's score must sit at least
`margin` logits away from that label's decision threshold (the teacher's own dev-tuned thresholds), so a
pseudo-label says both "this topic is there" and "those are not". The archive's topics are not the gold
data's (diplomacy dominates it), so each label takes at most `label_ratio` x its gold positives, its most
confident ones, and label-less paragraphs keep their gold share: the student's priors do not drift.
Paragraphs whose text is any gold record's (train, dev or test) are left out by content hash: gold labels win
over pseudo ones, and dev/test texts never enter training.

The pseudo-labelled records carry `meta.pseudo_label = true` and the teacher's name; they are logged as
their own MLflow dataset input. Yarowsky (1995), Xie et al. (2020, "Self-training with Noisy Student").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.documents import content_hash
from frontwire.model_sources import resolve_model
from frontwire.paths import shared_archives
from frontwire.predictor import TopicModel, resolve_backend
from frontwire.progress import progress
from frontwire.records import Record, fingerprint
from frontwire.train.data import SplitData
from frontwire.train.domain import archive_paragraphs
from frontwire.train.settings import SelfTrainingSection

log = logging.getLogger(__name__)

SCORE_CHUNK = 256  # paragraphs per teacher call: a progress bar that moves, without losing length sorting


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def confident_labels(
    scores: np.ndarray, labels: Sequence[str], thresholds: dict[str, float], margin: float, default: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep mask, positive indicator, confidence) per row: confidence is the smallest distance, in logits, of
    any label's score from its threshold; a row is kept when that is at least `margin`."""
    cut = np.array([thresholds.get(label, default) for label in labels], dtype=np.float32)
    distance = _logit(scores) - _logit(cut)[None, :]
    confidence = np.abs(distance).min(axis=1) if len(labels) else np.zeros(len(scores))
    return confidence >= margin, distance > 0, confidence


def select_balanced(
    candidates: Sequence[Record], confidence: Sequence[float], gold: Sequence[Record], labels: Sequence[str],
    label_ratio: float | None, max_records: int | None,
) -> list[Record]:
    """Per label, its `label_ratio` x (gold positives) most confident candidates carrying it (a paragraph with
    two labels may be chosen for either, so a frequent label can pass its cap by its co-occurrences); then the
    most confident label-less candidates, to keep their gold share; at most `max_records`, most confident first.
    """
    order = np.argsort(-np.asarray(confidence), kind="stable")
    chosen: set[int] = set()
    for label in labels:
        cap = None if label_ratio is None else round(label_ratio * sum(label in r.labels for r in gold))
        carrying = [int(i) for i in order if label in candidates[i].labels]
        chosen.update(carrying[:cap])
    empty = [int(i) for i in order if not candidates[i].labels]
    empty_share = float(np.mean([not r.labels for r in gold])) if gold else 0.5
    chosen.update(empty[: round(len(chosen) * empty_share / max(1e-9, 1 - empty_share))])
    ranked = [int(i) for i in order if i in chosen][:max_records]
    return [candidates[i] for i in sorted(ranked)]


def pseudo_label(
    teacher: TopicModel, paragraphs: Sequence[str], gold: Sequence[Record], settings: SelfTrainingSection
) -> list[Record]:
    """Confident pseudo-labelled records from `paragraphs` (see module docstring for the selection rules)."""
    excluded = {content_hash(r.text) for r in gold}
    texts = [t for t in paragraphs if content_hash(t) not in excluded]
    labels = teacher.meta.labels
    chunks = progress(range(0, len(texts), SCORE_CHUNK), desc="pseudo-label", unit="chunk", event="pseudo_label",
                      fields={"paragraphs": len(texts)}, logger=log)
    scores = (
        np.concatenate([teacher.scores(texts[i : i + SCORE_CHUNK]) for i in chunks])
        if texts
        else np.zeros((0, len(labels)), dtype=np.float32)
    )
    keep, positive, confidence = confident_labels(scores, labels, teacher.thresholds, settings.margin)
    candidates, kept_confidence = [], []
    for row in np.flatnonzero(keep):
        # decode applies the schema's exclusivity (boilerplate alone), exactly as at prediction time
        decoded = teacher.decode(scores[row])
        if set(decoded) != {labels[i] for i in np.flatnonzero(positive[row])}:
            continue  # exclusivity overrode a confident label: the teacher contradicts itself, skip
        candidates.append(
            Record(
                id=f"pseudo-{content_hash(texts[row])}",
                text=texts[row],
                labels=decoded,
                meta={"pseudo_label": True, "teacher": teacher.meta.name},
            )
        )
        kept_confidence.append(float(confidence[row]))
    chosen = select_balanced(candidates, kept_confidence, gold, labels, settings.label_ratio, settings.max_records)
    log.info(
        "self_training candidates=%d confident=%d kept=%d empty=%d per_label=%s",
        len(texts),
        len(candidates),
        len(chosen),
        sum(not r.labels for r in chosen),
        {label: sum(label in r.labels for r in chosen) for label in labels},
    )
    return chosen


def load_teacher(settings: SelfTrainingSection, registered_name: str, tracking_uri: str | None) -> TopicModel:
    source = settings.teacher
    ref = resolve_model(source, "classifier", registered_name, tracking_uri=tracking_uri)
    if ref is None:
        raise ValueError(
            f"self_training.teacher is unset and no {registered_name!r} model is registered: train one first "
            "or pass a model dir / models:/ URI"
        )
    backend = resolve_backend(settings.backend)
    log.info("self_training teacher=%s dir=%s backend=%s", ref.source, ref.model_dir, backend)
    return TopicModel.load(Path(ref.model_dir), backend=backend)


def pseudo_records(
    settings: SelfTrainingSection, data: SplitData, labels: Sequence[str], registered_name: str,
    tracking_uri: str | None,
) -> list[Record]:
    """Archive paragraphs pseudo-labelled by the teacher when `settings.enabled`, else none."""
    if not settings.enabled:
        return []
    archives = [Path(p) for p in settings.archives] or shared_archives()
    if not archives:
        raise FileNotFoundError("self_training: no archives given and the shared archive is absent")
    teacher = load_teacher(settings, registered_name, tracking_uri)
    if list(teacher.meta.labels) != list(labels):
        raise ValueError(
            f"self_training: teacher {teacher.meta.name!r} predicts {teacher.meta.labels}, the schema has "
            f"{list(labels)}: a teacher must share the student's labels"
        )
    return pseudo_label(teacher, archive_paragraphs(archives), [*data.train, *data.dev, *data.test], settings)


def describe_with_pseudo(data: SplitData, pseudo: list[Record]) -> dict[str, Any]:
    """The gold data's description (fingerprints unchanged) plus what the pseudo-labelled part was."""
    description = data.describe()
    if pseudo:
        description.update(
            pseudo_size=len(pseudo), pseudo_fingerprint=fingerprint(pseudo), pseudo_teacher=pseudo[0].meta["teacher"]
        )
    return description
