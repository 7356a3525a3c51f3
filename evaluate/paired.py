"""A candidate and the champion it would replace, scored on the same test records (`frontwire retrain`).

Both sides go through `score_model`, the scoring path of `frontwire evaluate`, and share one set of bootstrap
resamples, so the interval of candidate − champion is a paired one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontwire.evaluate.bootstrap import CONFIDENCE, Counts, intervals, paired_difference, resample_weights


@dataclass
class SideResult:
    name: str
    model_dir: Path
    counts: Counts
    metrics: dict[str, Any]


def _evaluate_side(kind: str, name: str, model_dir: Path, records: list, batch_size: int, device: str):
    from frontwire.evaluate.runner import score_model  # the runner imports every report module: only when used
    from frontwire.predictor import EntityModel, TopicModel

    model = (TopicModel if kind == "classifier" else EntityModel).load(model_dir, device)
    labels = model.meta.labels if kind == "classifier" else model.meta.schema_.entity_names
    _, evaluation, counts = score_model(kind, model, labels, records, batch_size)
    return SideResult(name, model_dir, counts, evaluation.summary["metrics"]), model.meta.schema_.tag


def compare_on_test(
    kind: str,
    candidate: tuple[str, Path],
    champion: tuple[str, Path] | None,
    records: list,
    n_resamples: int = 1000,
    seed: int = 13,
    batch_size: int = 32,
    device: str = "auto",
) -> dict[str, Any]:
    """Both models on the same test records; intervals and the paired candidate − champion difference."""
    result: dict[str, Any] = {"paragraphs": len(records), "n_resamples": n_resamples, "confidence": CONFIDENCE}
    if not records:
        result["note"] = "empty test split: nothing to evaluate"
        return result
    weights = resample_weights(len(records), n_resamples, seed)
    new, new_schema = _evaluate_side(kind, *candidate, records, batch_size, device)
    result["candidate"] = {"model": new.name, "intervals": intervals(new.counts, weights)}
    if champion is None:
        result["champion"] = None
        return result
    old, old_schema = _evaluate_side(kind, *champion, records, batch_size, device)
    result["champion"] = {"model": old.name, "intervals": intervals(old.counts, weights)}
    if old_schema != new_schema:
        result["note"] = f"label schemas differ ({old_schema} vs {new_schema}): no paired comparison"
        return result
    result["difference"] = paired_difference(old.counts, new.counts, weights)  # B − A = candidate − champion
    return result
