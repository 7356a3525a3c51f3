"""TF-IDF + logistic-regression topic scorer: the baseline, and an optional blend partner of the classifier.

Word n-grams catch what a small encoder misses (rare names of sanctions instruments, boilerplate phrasing),
so blending both scores, with the weight chosen on dev, is a cheap and robust gain on small data.

In a model dir the scorer is plain data, never a pickle: `lexical.json` (labels, vectorizer settings,
vocabulary) and `lexical.safetensors` (idf, coefficients, intercepts). Loading it rebuilds a TfidfVectorizer
from those settings and a fixed vocabulary, so the features are sklearn's own, and applies the logistic
regressions as the linear maps they are: nothing in those files can name code to run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline

LEXICAL_JSON = "lexical.json"
LEXICAL_WEIGHTS = "lexical.safetensors"
LEXICAL_FORMAT = 1
# The vectorizer settings that change features at inference; the fitting-only ones (min_df, max_features)
# already shaped the stored vocabulary. Callables (tokenizer, preprocessor) are never stored.
_VECTORIZER_PARAMS = ("analyzer", "binary", "lowercase", "ngram_range", "norm", "smooth_idf", "strip_accents",
                      "sublinear_tf", "token_pattern", "use_idf")


class LexicalFileError(ValueError):
    """A stored lexical scorer that is missing, of another format, or inconsistent."""


class LexicalScorer:
    """One-vs-rest logistic regression over TF-IDF (1–2 grams); labels absent from training score 0."""

    def __init__(self, labels: Sequence[str], seed: int = 13, c: float = 10.0) -> None:
        self.labels = list(labels)
        self.seed = seed
        self.c = c
        self.present: np.ndarray | None = None
        self.pipeline: Pipeline | None = None  # only on a freshly fitted scorer; a loaded one has the parts below
        self.vectorizer: TfidfVectorizer | None = None
        self.coef: np.ndarray | None = None  # [present labels, vocabulary]
        self.intercept: np.ndarray | None = None  # [present labels]

    def fit(self, texts: Sequence[str], y: np.ndarray) -> LexicalScorer:
        self.present = y.sum(0) > 0
        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
            OneVsRestClassifier(
                LogisticRegression(C=self.c, max_iter=2000, class_weight="balanced", random_state=self.seed)
            ),
        ).fit(list(texts), y[:, self.present])
        self.vectorizer = self.pipeline[0]
        self.coef, self.intercept = _linear_parts(self.pipeline[-1], len(self.vectorizer.vocabulary_))
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        # The same arithmetic as LogisticRegression.predict_proba for a binary problem (expit of the decision
        # function), on fitted and loaded scorers alike, so a saved scorer scores as it did in training.
        if self.vectorizer is None or self.present is None or self.coef is None or self.intercept is None:
            raise RuntimeError("LexicalScorer used before fit() or load()")
        full = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if len(texts):
            features = self.vectorizer.transform(list(texts))
            full[:, self.present] = expit(np.asarray(features @ self.coef.T) + self.intercept)
        return full

    def save(self, model_dir: Path) -> None:
        if self.vectorizer is None or self.present is None or self.coef is None or self.intercept is None:
            raise RuntimeError("LexicalScorer saved before fit()")
        params = self.vectorizer.get_params()
        settings = {name: params[name] for name in _VECTORIZER_PARAMS}
        settings["ngram_range"] = list(settings["ngram_range"])
        vocabulary = sorted(self.vectorizer.vocabulary_.items(), key=lambda item: item[1])
        document = {
            "format": LEXICAL_FORMAT,
            "labels": self.labels,
            "present": [bool(p) for p in self.present],
            "seed": self.seed,
            "c": self.c,
            "vectorizer": settings,
            # in column order: the position of a term is its column in idf and coef
            "vocabulary": [term for term, _ in vocabulary],
        }
        (model_dir / LEXICAL_JSON).write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
        save_file({"idf": np.ascontiguousarray(self.vectorizer.idf_, dtype=np.float64),
                   "coef": np.ascontiguousarray(self.coef), "intercept": np.ascontiguousarray(self.intercept)},
                  str(model_dir / LEXICAL_WEIGHTS), metadata={"frontwire": "lexical", "format": str(LEXICAL_FORMAT)})

    @classmethod
    def load(cls, model_dir: Path, labels: Sequence[str]) -> LexicalScorer:
        """The scorer saved in `model_dir`; `labels` are the model's, which the stored ones must equal."""
        json_path, weights_path = Path(model_dir) / LEXICAL_JSON, Path(model_dir) / LEXICAL_WEIGHTS
        for path in (json_path, weights_path):
            if not path.is_file():
                raise LexicalFileError(f"{path}: missing (the model blends a TF-IDF scorer stored in "
                                       f"{LEXICAL_JSON} + {LEXICAL_WEIGHTS})")
        try:
            document = json.loads(json_path.read_text(encoding="utf-8"))
            arrays = load_file(str(weights_path))
        except (OSError, ValueError, SafetensorError) as err:  # SafetensorError is no ValueError
            raise LexicalFileError(f"{model_dir}: unreadable lexical scorer: {err}") from err
        return cls._from_parts(json_path, document, arrays, list(labels))

    @classmethod
    def _from_parts(cls, json_path: Path, document: Any, arrays: dict[str, np.ndarray],
                    labels: list[str]) -> LexicalScorer:
        def bad(why: str) -> LexicalFileError:
            return LexicalFileError(f"{json_path}: {why}")

        if not isinstance(document, dict) or document.get("format") != LEXICAL_FORMAT:
            raise bad(f"expected a lexical scorer of format {LEXICAL_FORMAT}")
        if document.get("labels") != labels:
            raise bad(f"labels {document.get('labels')} differ from the model's {labels}")
        settings, vocabulary, present = document.get("vectorizer"), document.get("vocabulary"), document.get("present")
        if not isinstance(settings, dict) or set(settings) != set(_VECTORIZER_PARAMS):
            raise bad(f"vectorizer settings must be exactly {', '.join(_VECTORIZER_PARAMS)}")
        if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
            raise bad("vocabulary must be a list of terms")
        if not (isinstance(present, list) and len(present) == len(labels)
                and all(isinstance(p, bool) for p in present)):
            raise bad("present must be one true/false per label")
        if set(arrays) != {"idf", "coef", "intercept"}:
            raise bad(f"{LEXICAL_WEIGHTS} must hold idf, coef and intercept, not {sorted(arrays)}")
        rows, columns = sum(present), len(vocabulary)
        if (arrays["idf"].shape != (columns,) or arrays["coef"].shape != (rows, columns)
                or arrays["intercept"].shape != (rows,)):
            raise bad(f"array shapes idf {arrays['idf'].shape}, coef {arrays['coef'].shape}, intercept "
                      f"{arrays['intercept'].shape} do not fit {columns} terms and {rows} trained labels")
        if len(set(vocabulary)) != columns:
            raise bad("vocabulary repeats a term")
        scorer = cls(labels, int(document.get("seed", 13)), float(document.get("c", 10.0)))
        try:
            vectorizer = TfidfVectorizer(**{**settings, "ngram_range": tuple(settings["ngram_range"])},
                                         vocabulary={term: i for i, term in enumerate(vocabulary)})
            vectorizer.idf_ = arrays["idf"]
            vectorizer.transform([""])  # sklearn validates the settings here, not in the constructor
        except (TypeError, ValueError) as err:
            raise bad(f"vectorizer settings rejected by scikit-learn: {err}") from err
        scorer.vectorizer, scorer.present = vectorizer, np.asarray(present, dtype=bool)
        scorer.coef, scorer.intercept = arrays["coef"].astype(np.float64), arrays["intercept"].astype(np.float64)
        return scorer


def _linear_parts(ovr: OneVsRestClassifier, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef [labels, features], intercept [labels]) of the one-vs-rest regressions. A label positive in every
    training text gets sklearn's constant predictor (probability 1, or 0): a zero row with an infinite intercept
    gives the same score."""
    coef = np.zeros((len(ovr.estimators_), n_features), dtype=np.float64)
    intercept = np.zeros(len(ovr.estimators_), dtype=np.float64)
    for row, estimator in enumerate(ovr.estimators_):
        if isinstance(estimator, LogisticRegression):
            coef[row] = estimator.coef_.ravel()
            intercept[row] = float(estimator.intercept_[0])
        else:
            intercept[row] = np.inf if float(np.ravel(estimator.y_)[0]) > 0 else -np.inf
    return coef, intercept
