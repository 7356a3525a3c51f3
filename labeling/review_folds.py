"""Out-of-fold assignment for the review: k folds grouped by article, stratified on each record's first topic."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from frontwire.records import Record


def article_of(record: Record) -> str:
    return str(record.meta.get("article_id") or record.id)


def article_folds(records: Sequence[Record], k: int, seed: int) -> np.ndarray:
    """Fold index per record; the paragraphs of one article share a fold, so no article scores itself."""
    groups = [article_of(r) for r in records]
    if len(set(groups)) < k:
        raise ValueError(f"{len(set(groups))} articles cannot make {k} folds: lower review.folds")
    strata = [r.labels[0] if r.labels else "none" for r in records]
    folds = np.full(len(records), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # stratification is best effort: a topic rarer than k records only warns, and the grouping still holds
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(records)), strata, groups)):
            folds[held_out] = fold
    return folds
