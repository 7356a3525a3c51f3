"""TF-IDF + logistic-regression topic scorer: the baseline, and an optional blend partner of the classifier.

Word n-grams catch what a small encoder misses (rare names of sanctions instruments, boilerplate phrasing),
so blending both scores, with the weight chosen on dev, is a cheap and robust gain on small data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline


class LexicalScorer:
    """One-vs-rest logistic regression over TF-IDF (1–2 grams); labels absent from training score 0."""

    def __init__(self, labels: Sequence[str], seed: int = 13, c: float = 10.0) -> None:
        self.labels = list(labels)
        self.seed = seed
        self.c = c
        self.present: np.ndarray | None = None
        self.pipeline: Pipeline | None = None

    def fit(self, texts: Sequence[str], y: np.ndarray) -> LexicalScorer:
        self.present = y.sum(0) > 0
        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
            OneVsRestClassifier(
                LogisticRegression(C=self.c, max_iter=2000, class_weight="balanced", random_state=self.seed)
            ),
        ).fit(list(texts), y[:, self.present])
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        if self.pipeline is None or self.present is None:
            raise RuntimeError("LexicalScorer used before fit()")
        full = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if len(texts):
            full[:, self.present] = self.pipeline.predict_proba(list(texts))
        return full
