"""Deterministic, article-grouped, label-balanced and stable train/dev/test splits.

Groups (articles) are assigned greedily, rarest label first, to the split whose quota for that label is
furthest from filled (iterative stratification, Sechidis et al. 2011, applied to groups). Groups already
present in a previous assignment keep their split, so a paragraph never changes side across retrains and
the test set stays comparable.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import Field, model_validator

from frontwire.config import StrictModel
from frontwire.records import Record

SPLITS = ("train", "dev", "test")
NO_LABEL = "<none>"


class SplitConfig(StrictModel):
    group_by: str = "article_id"
    dev: float = Field(default=0.15, ge=0.0, lt=1.0)
    test: float = Field(default=0.15, ge=0.0, lt=1.0)
    seed: int = 13

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitConfig:
        if self.dev + self.test >= 1.0:
            raise ValueError("dev + test must leave a training share (< 1.0)")
        return self

    @property
    def ratios(self) -> dict[str, float]:
        return {"train": 1.0 - self.dev - self.test, "dev": self.dev, "test": self.test}


def group_key(record: Record, group_by: str) -> str:
    value = record.meta.get(group_by)
    return str(value) if value not in (None, "") else f"record:{record.id}"


def assign_splits(
    records: Sequence[Record], config: SplitConfig, previous: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return {group: split} covering every record's group."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[group_key(record, config.group_by)].append(record)

    label_counts: dict[str, Counter[str]] = {
        group: Counter(label for r in members for label in (r.labels or [NO_LABEL]))
        for group, members in groups.items()
    }
    totals: Counter[str] = Counter()
    for counts in label_counts.values():
        totals.update(counts)
    ratios = config.ratios
    wanted = {s: {label: ratios[s] * n for label, n in totals.items()} for s in SPLITS}
    wanted_size = {s: ratios[s] * len(records) for s in SPLITS}

    assignment: dict[str, str] = {}
    for group, split in (previous or {}).items():
        if group in groups and split in SPLITS:
            assignment[group] = split
            _take(wanted, wanted_size, split, label_counts[group], len(groups[group]))

    pending = sorted(g for g in groups if g not in assignment)
    rng = random.Random(config.seed)
    rng.shuffle(pending)
    # Rarest label first, then larger groups first: they are the hardest to place without skew.
    pending.sort(key=lambda g: (min(totals[label] for label in label_counts[g]), -len(groups[g])))
    for group in pending:
        rarest = min(label_counts[group], key=lambda label: (totals[label], label))
        candidates = [s for s in SPLITS if ratios[s] > 0]
        split = max(candidates, key=lambda s: (wanted[s][rarest], wanted_size[s], -SPLITS.index(s)))
        assignment[group] = split
        _take(wanted, wanted_size, split, label_counts[group], len(groups[group]))
    return assignment


def _take(
    wanted: dict[str, dict[str, float]],
    wanted_size: dict[str, float],
    split: str,
    counts: Counter[str],
    size: int,
) -> None:
    for label, n in counts.items():
        wanted[split][label] = wanted[split].get(label, 0.0) - n
    wanted_size[split] -= size


def split_records(records: Sequence[Record], assignment: Mapping[str, str], group_by: str) -> dict[str, list[Record]]:
    parts: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for record in records:
        group = group_key(record, group_by)
        if group not in assignment:
            raise KeyError(f"record {record.id}: group {group!r} has no split assignment")
        parts[assignment[group]].append(record)
    return parts


def save_assignment(path: Path, assignment: Mapping[str, str], config: SplitConfig) -> None:
    payload = {
        "group_by": config.group_by,
        "seed": config.seed,
        "ratios": config.ratios,
        "groups": dict(sorted(assignment.items())),
    }
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_assignment(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    payload = json.loads(path.read_text(encoding="utf-8"))
    return dict(payload["groups"])
