"""A fast per-token entity tagger for out-of-fold review: logistic regression over hand-made word features.

Words are the regex units the entity metrics score on (`frontwire.metrics.regex_words`), tagged IOB2. Features
are the classic ones of feature-based NER (lower-cased word, shape with capitalisation, affixes, the
neighbouring words and shapes), so a fold trains in seconds on two cores; the review needs calibrated-enough
per-token tag probabilities, not state-of-the-art F1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

from frontwire.metrics import regex_words, spans_to_word_tags
from frontwire.records import Record

_SHAPE_RUN = re.compile(r"(.)\1+")


def shape(word: str) -> str:
    """"Zelensky" → "Xx", "F-16s" → "X-dx", "NATO" → "X": character classes with repeats collapsed."""
    classes = "".join("X" if c.isupper() else "x" if c.islower() else "d" if c.isdigit() else c for c in word)
    return _SHAPE_RUN.sub(r"\1", classes)


def word_features(text: str, words: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    tokens = [text[s:e] for s, e in words]
    feats = []
    for i, token in enumerate(tokens):
        lower = token.lower()
        row: dict[str, Any] = {
            "w": lower,
            "shape": shape(token),
            "p2": lower[:2],
            "p3": lower[:3],
            "s2": lower[-2:],
            "s3": lower[-3:],
            "title": token.istitle(),
            "upper": token.isupper() and len(token) > 1,
            "first": i == 0,
        }
        for offset in (-2, -1, 1, 2):
            j = i + offset
            if 0 <= j < len(tokens):
                row[f"w{offset:+d}"] = tokens[j].lower()
                row[f"shape{offset:+d}"] = shape(tokens[j])
            else:
                row[f"w{offset:+d}"] = "<edge>"
        row["w-1|w"] = f"{row['w-1']}|{lower}"
        row["w|w+1"] = f"{lower}|{row['w+1']}"
        feats.append(row)
    return feats


class TokenTagger:
    """Multinomial logistic regression over `word_features`; `tags` fixes the probability columns."""

    def __init__(self, tags: Sequence[str], c: float, max_iter: int, seed: int) -> None:
        self.tags = list(tags)
        self.model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
        self.vectorizer = DictVectorizer()

    def fit(self, records: Sequence[Record]) -> TokenTagger:
        feats: list[dict[str, Any]] = []
        targets: list[str] = []
        for record in records:
            words = regex_words(record.text)
            feats.extend(word_features(record.text, words))
            gold = [(s.start, s.end, s.label) for s in record.entities]
            targets.extend(spans_to_word_tags(record.text, gold, lambda _, w=words: w))
        self.model.fit(self.vectorizer.fit_transform(feats), targets)
        return self

    def word_probabilities(self, texts: Sequence[str]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """Per text: its words and a (words × tags) probability matrix in `self.tags` order."""
        words = [regex_words(text) for text in texts]
        feats = [row for text, w in zip(texts, words, strict=True) for row in word_features(text, w)]
        if not feats:
            return [(w, np.zeros((0, len(self.tags)))) for w in words]
        raw = self.model.predict_proba(self.vectorizer.transform(feats))
        full = np.zeros((len(feats), len(self.tags)))
        index = {tag: i for i, tag in enumerate(self.tags)}
        for column, tag in enumerate(self.model.classes_):
            full[:, index[tag]] = raw[:, column]  # a tag absent from the training folds keeps probability 0
        out, offset = [], 0
        for w in words:
            out.append((w, full[offset : offset + len(w)]))
            offset += len(w)
        return out


def decode_spans(
    words: Sequence[tuple[int, int]], probs: np.ndarray, tags: Sequence[str]
) -> list[tuple[int, int, str]]:
    """Argmax IOB2 decoding to character spans; an I- tag after O or another type opens a new span."""
    spans: list[tuple[int, int, str]] = []
    current: list[Any] | None = None
    for (start, end), row in zip(words, probs, strict=True):
        prefix, _, kind = tags[int(np.argmax(row))].partition("-")
        if prefix == "I" and current is not None and current[2] == kind:
            current[1] = end
            continue
        if current is not None:
            spans.append((current[0], current[1], current[2]))
            current = None
        if prefix in ("B", "I"):
            current = [start, end, kind]
    if current is not None:
        spans.append((current[0], current[1], current[2]))
    return spans


def span_distribution(
    words: Sequence[tuple[int, int]], probs: np.ndarray, tags: Sequence[str], types: Sequence[str], start: int, end: int
) -> np.ndarray:
    """P(type) for each entity type and P(not an entity) last, for the character range start–end.

    The range is an entity of type T when its first word is B-T and every later word I-T; the words are taken
    as independent, and the rest of the mass (any other tagging) goes to "not an entity".
    """
    inside = [i for i, (s, e) in enumerate(words) if s < end and e > start]
    index = {tag: i for i, tag in enumerate(tags)}
    dist = np.zeros(len(types) + 1)
    if not inside:
        dist[-1] = 1.0
        return dist
    for t, kind in enumerate(types):
        # geometric mean over the words, so a long name is not doubted for its length alone
        parts = [probs[inside[0], index[f"B-{kind}"]], *(probs[i, index[f"I-{kind}"]] for i in inside[1:])]
        dist[t] = float(np.exp(np.mean(np.log(np.clip(parts, 1e-9, 1.0)))))
    after = inside[-1] + 1
    if after < len(words):
        # a span that continues into the next word is not this span: discount by P(next word is not I-T)
        for t, kind in enumerate(types):
            dist[t] *= 1.0 - probs[after, index[f"I-{kind}"]]
    total = dist[:-1].sum()
    if total > 1.0:
        dist[:-1] /= total
    dist[-1] = max(0.0, 1.0 - dist[:-1].sum())
    return dist
