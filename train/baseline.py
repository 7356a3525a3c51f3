"""TF-IDF + logistic-regression topic baseline (scikit-learn), logged to the same MLflow experiment.

Same split, same per-label threshold tuning on dev and the same exclusive-label decoding as the transformer,
so the margin between the two is the encoder's, not the protocol's.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import numpy as np

from frontwire.lexical import LexicalScorer
from frontwire.metrics import multilabel_indicator, topic_metrics, tune_thresholds
from frontwire.predictor import decode_topics
from frontwire.schema import LabelSchema
from frontwire.train.data import SplitData

log = logging.getLogger(__name__)


def train_baseline(
    data: SplitData,
    schema: LabelSchema,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    scorer: LexicalScorer | None = None,
) -> dict[str, Any]:
    """`scorer`: the classifier's blend partner when it was fitted on the same train split (the same model)."""
    labels = schema.topic_names
    if scorer is None:
        y_train = multilabel_indicator([r.labels for r in data.train], labels)
        scorer = LexicalScorer(labels).fit([r.text for r in data.train], y_train)

    def scores(records) -> np.ndarray:
        return scorer.scores([r.text for r in records])

    def decode(score_rows: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
        return multilabel_indicator(
            [decode_topics(row, labels, thresholds, schema.exclusive_topics) for row in score_rows], labels
        )

    y_dev = multilabel_indicator([r.labels for r in data.dev], labels)
    dev_scores = scores(data.dev)
    thresholds = tune_thresholds(y_dev, dev_scores, labels)
    metrics: dict[str, Any] = {
        "dev": topic_metrics(y_dev, decode(dev_scores, thresholds), labels),
        "thresholds": thresholds,
    }
    if data.test:
        y_test = multilabel_indicator([r.labels for r in data.test], labels)
        metrics["test"] = topic_metrics(y_test, decode(scores(data.test), thresholds), labels)

    if experiment:
        from frontwire.train.run_steps import flat_metrics

        with mlflow.start_run(run_name="tfidf-logreg-baseline"):
            mlflow.set_tags(
                {"frontwire.kind": "baseline", "frontwire.schema": schema.tag, "dataset.fingerprint": data.fingerprint}
            )
            mlflow.log_params(
                {
                    "model": "tfidf(1-2gram,min_df=2,sublinear)+logreg(C=10,balanced)",
                    "data.fingerprint": data.fingerprint,
                }
            )
            mlflow.log_metrics(flat_metrics(metrics))
            mlflow.log_dict(thresholds, "thresholds.json")
            mlflow.sklearn.log_model(scorer.pipeline, name="model")
    log.info("baseline dev_micro=%.4f dev_macro=%.4f", metrics["dev"]["micro"]["f1"], metrics["dev"]["macro"]["f1"])
    return metrics
