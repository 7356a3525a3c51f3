"""How much a paragraph would teach the models: topic scores near their thresholds, NER tags near a tie.

Used by `frontwire labeling suggest` to rank archive paragraphs and by bench/active_learning.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

NER_WEIGHT = 0.3  # share of the NER token-margin uncertainty in the blended informativeness


def topic_uncertainty(scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Per paragraph, 1 − the normalised distance of the label nearest its decision threshold.

    A score s against threshold t is |s − t| / (1 − t) above it and |s − t| / t below it, so 0 is "on the
    threshold" and 1 is "as sure as the score can say"; a label tuned to t = 0.2 is as uncertain at 0.2 as an
    untuned one at 0.5. Returns values in [0, 1]; 1 = some label sits exactly on its threshold.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [paragraphs, labels], got shape {scores.shape}")
    if scores.shape[0] == 0:
        return np.zeros(0)
    t = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)[None, :]
    distance = np.where(scores >= t, (scores - t) / (1 - t), (t - scores) / t)
    return 1.0 - np.clip(distance, 0.0, 1.0).min(axis=1)


def margin_uncertainty(margins: Sequence[float]) -> float:
    """1 − the smallest top-1/top-2 probability margin over a paragraph's words (0 when it has none)."""
    return float(1.0 - min(margins)) if len(margins) else 0.0


def informativeness(topic: np.ndarray | None, ner: np.ndarray | None, ner_weight: float = NER_WEIGHT) -> np.ndarray:
    """Blend of the two uncertainties; either alone when only one model is there."""
    if topic is None and ner is None:
        raise ValueError("informativeness needs topic and/or NER uncertainties")
    if ner is None:
        return np.asarray(topic, dtype=np.float64)
    if topic is None:
        return np.asarray(ner, dtype=np.float64)
    return (1.0 - ner_weight) * np.asarray(topic, dtype=np.float64) + ner_weight * np.asarray(ner, dtype=np.float64)


class MarginRecorder:
    """Wraps an NER forward pass: passes logits through and keeps each window's word-level tag margins.

    Windows are recognised by their token ids, so this needs no knowledge of the predictor's batching; the
    entity decoding itself stays the predictor's.
    """

    def __init__(self, forward, first_tokens: Mapping[tuple[int, ...], list[int]]) -> None:
        self.forward = forward
        self.first_tokens = first_tokens
        self.margins: dict[tuple[int, ...], float] = {}

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        logits = self.forward(ids, mask)
        for row in range(len(ids)):
            length = int(mask[row].sum())
            key = tuple(int(t) for t in ids[row, :length])
            positions = self.first_tokens.get(key)
            if not positions:
                continue
            window = logits[row, positions].astype(np.float64)
            probs = np.exp(window - window.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            top2 = np.sort(probs, axis=-1)[:, -2:]
            self.margins[key] = float((top2[:, 1] - top2[:, 0]).min())
        return logits
