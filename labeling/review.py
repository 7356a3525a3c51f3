"""`frontwire labeling review`: out-of-fold predictions for every annotated record, then the suspects.

Folds are grouped by article (`review_folds`); topics by confident learning (`review_topics`); entities by a
token tagger pooled with surface-form counts (`review_entities`). Each kind is ranked on its own and keeps at
most `review.max_suspects`; ranks start at 1 per kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

from frontwire.labeling.review_entities import entity_suspects, out_of_fold_word_probabilities
from frontwire.labeling.review_folds import article_folds
from frontwire.labeling.review_suspects import Suspect
from frontwire.labeling.review_topics import fold_thresholds, out_of_fold_topic_scores, topic_suspects
from frontwire.labeling.settings import ReviewConfig
from frontwire.metrics import multilabel_indicator
from frontwire.records import Record
from frontwire.schema import LabelSchema

log = logging.getLogger(__name__)


@dataclass
class ReviewOutcome:
    suspects: list[Suspect]
    records: int
    folds: int
    seconds: dict[str, float]


def review_records(records: Sequence[Record], schema: LabelSchema, config: ReviewConfig) -> ReviewOutcome:
    if not records:
        raise ValueError("no annotated records to review")
    # L-BFGS-B's many small BLAS calls spend more time handing work between threads than computing when the
    # cores are shared (one tagger fold on the sample export: 7.7 s with 2 BLAS threads, 1.0 s with 1)
    with threadpool_limits(limits=config.blas_threads, user_api="blas"):
        return _review(records, schema, config)


def _review(records: Sequence[Record], schema: LabelSchema, config: ReviewConfig) -> ReviewOutcome:
    began = time.perf_counter()
    folds = article_folds(records, config.folds, config.seed)
    labels = schema.topic_names
    probs = out_of_fold_topic_scores(records, folds, labels, config.topic_c, config.seed)
    y = multilabel_indicator([r.labels for r in records], labels)
    topics = topic_suspects(records, probs, fold_thresholds(y, probs, folds, labels), schema)
    topic_done = time.perf_counter()
    word_probs = out_of_fold_word_probabilities(records, folds, schema, config)
    entities = [
        s for s in entity_suspects(records, folds, word_probs, schema, config) if s.score >= config.min_entity_score
    ]
    done = time.perf_counter()
    ranked = []
    for group in (topics[: config.max_suspects], entities[: config.max_suspects]):
        ranked.extend(s.model_copy(update={"rank": rank}) for rank, s in enumerate(group, start=1))
    seconds = {"topics": round(topic_done - began, 2), "entities": round(done - topic_done, 2)}
    log.info("review done records=%d topic_suspects=%d entity_suspects=%d seconds=%s", len(records),
             len(topics), len(entities), seconds)
    return ReviewOutcome(ranked, len(records), config.folds, seconds)
