"""One evaluation: one or two models on one dataset → DIR (metrics.json, PNGs, report.html/.md, input errors).

Both sides of a comparison score the very same records and share one set of bootstrap resamples, so the
interval of B - A is a paired one: paragraph difficulty cancels out of it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.evaluate.bootstrap import CONFIDENCE, Counts, intervals, paired_difference, resample_weights
from frontwire.evaluate.data import DataError, EvalData, load_eval_data, write_issues
from frontwire.evaluate.entities import evaluate_entities, predict_entities
from frontwire.evaluate.markdown import render_markdown
from frontwire.evaluate.models import BASELINE, ModelSource, ModelSpecError, TfidfBaseline, load_scorer, resolve_model
from frontwire.evaluate.plots import entity_plots, topic_plots
from frontwire.evaluate.report import render_html
from frontwire.evaluate.topics import evaluate_topics, predict_topics
from frontwire.modeling import set_threads
from frontwire.paths import default_tracking_uri
from frontwire.records import Record
from frontwire.schema import LabelSchema, load_schema

log = logging.getLogger(__name__)

FORMAT = "frontwire.evaluation/1"
SIDES = ("a", "b")


@dataclass
class EvalOptions:
    data: Path
    out: Path
    split: str = "test"
    n_resamples: int = 1000
    seed: int = 13
    top: int = 50
    batch_size: int = 32
    device: str = "auto"
    threads: int | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    log_to_mlflow: bool = True


@dataclass
class Outcome:
    payload: dict[str, Any]
    out_dir: Path
    mlflow_run_id: str | None


def run_evaluation(specs: Sequence[str], options: EvalOptions) -> Outcome:
    if not 1 <= len(specs) <= 2:
        raise ModelSpecError(f"evaluate takes one model, or two to compare; got {len(specs)}")
    if options.n_resamples < 1:
        raise ValueError("the number of bootstrap resamples must be at least 1")
    set_threads(options.threads)
    uri = options.tracking_uri or default_tracking_uri()
    out = options.out
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for stale in (out / "plots").glob("[ab]_*.png"):  # a rerun into the same DIR must not keep old sides' plots
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="frontwire-evaluate-") as downloads:
        sources = [resolve_model(spec, uri, Path(downloads)) for spec in specs]
        kind, schema = _kind_and_schema(sources)
        data = load_eval_data(options.data, schema, kind, options.split)
        write_issues(out / "input_errors.jsonl", data.issues)
        log.info(
            "data source=%s format=%s split=%s records=%d issues=%d",
            data.source,
            data.format,
            data.split,
            len(data.records),
            len(data.issues),
        )
        if not data.records:
            raise DataError(
                f"{options.data}: no valid record to evaluate (split {data.split}); see {out / 'input_errors.jsonl'}"
            )
        weights = resample_weights(len(data.records), options.n_resamples, options.seed)
        models, counts = {}, {}
        for side, source in zip(SIDES, sources, strict=False):
            models[side], counts[side] = _evaluate_side(side, source, data, schema, options, weights)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data.describe(),
        "bootstrap": {
            "n_resamples": options.n_resamples,
            "seed": options.seed,
            "confidence": CONFIDENCE,
            "unit": "paragraph",
            "method": "percentile",
        },
        "models": models,
        "comparison": (
            {
                "a": models["a"]["model"]["spec"],
                "b": models["b"]["model"]["spec"],
                "paired_bootstrap": paired_difference(counts["a"], counts["b"], weights),
            }
            if len(models) == 2
            else None
        ),
    }
    (out / "metrics.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.html").write_text(render_html(payload, out), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(payload), encoding="utf-8")
    run_id = None
    if options.log_to_mlflow:
        from frontwire.evaluate.tracking import log_evaluation

        run_id = log_evaluation(payload, sources, data, out, uri, options.experiment)
    log.info("evaluation done out=%s kind=%s records=%d mlflow_run=%s", out, kind, len(data.records), run_id)
    return Outcome(payload, out, run_id)


def _kind_and_schema(sources: list[ModelSource]) -> tuple[str, LabelSchema]:
    kinds = {s.kind for s in sources}
    if len(kinds) > 1:
        raise ModelSpecError(f"cannot compare models of different kinds: {sorted(kinds)}")
    kind = kinds.pop()
    schemas = {s.meta.schema_.tag: s.meta.schema_ for s in sources if s.meta is not None}
    if len(schemas) > 1:
        raise ModelSpecError(f"the models were trained on different label schemas: {sorted(schemas)}")
    # a model is scored against the schema it was trained on; the baseline alone uses configs/labels.yaml
    return kind, next(iter(schemas.values())) if schemas else load_schema()


def score_model(
    kind: str, model: Any, labels: Sequence[str], records: Sequence[Record], batch_size: int, top: int = 0
) -> tuple[Any, Any, Counts]:
    """(prediction run, evaluation, bootstrap counts) of one model on `records`: `labels` are the classifier's
    labels or the entity types. The one scoring path of `frontwire evaluate` and `frontwire retrain`."""
    texts = [r.text for r in records]
    if kind == "classifier":
        run = predict_topics(model, labels, texts, batch_size)
        evaluation = evaluate_topics(list(records), run, top)
        return run, evaluation, Counts(
            evaluation.tp, evaluation.fp, evaluation.fn, np.ones(len(labels), dtype=bool), exact_match=True
        )
    run = predict_entities(model, texts, batch_size)
    evaluation = evaluate_entities(list(records), run, list(labels), top)
    return run, evaluation, Counts(evaluation.tp, evaluation.fp, evaluation.fn, evaluation.macro_columns)


def _evaluate_side(
    side: str, source: ModelSource, data: EvalData, schema: LabelSchema, options: EvalOptions, weights: np.ndarray
) -> tuple[dict[str, Any], Counts]:
    texts = [r.text for r in data.records]
    if source.kind == "classifier":
        if source.origin == "baseline":
            if data.parts is None:
                raise ModelSpecError(f"{BASELINE} trains on the data's train split: give a records folder or export")
            if data.split in ("train", "all"):
                log.warning(
                    "baseline_on_training_data split=%s: the baseline is scored on records it fitted", data.split
                )
            model = TfidfBaseline(schema, data.parts["train"], data.parts["dev"], options.seed)
            labels = schema.topic_names
        else:
            model, labels = load_scorer(source, options.device), source.meta.labels
        run, evaluation, counts = score_model(
            "classifier", model, labels, data.records, options.batch_size, options.top
        )
        plots = topic_plots(evaluation, labels, run.scores, run.thresholds, options.out / "plots", f"{side}_")
    else:
        model = load_scorer(source, options.device)
        run, evaluation, counts = score_model(
            "ner", model, source.meta.schema_.entity_names, data.records, options.batch_size, options.top
        )
        plots = entity_plots(evaluation, options.out / "plots", f"{side}_")
    seconds = run.seconds
    result = {
        "model": source.describe(),
        **evaluation.summary,
        "confidence_intervals": intervals(counts, weights),
        "timing": {
            "paragraphs": len(texts),
            "predict_seconds": round(seconds, 2),
            "paragraphs_per_second": round(len(texts) / seconds, 1) if seconds > 0 else None,
        },
        "plots": plots,
        "worst_misses": evaluation.rows,
    }
    ci = result["confidence_intervals"]["micro_f1"]
    log.info(
        "side_done side=%s model=%s paragraphs=%d predict_s=%.1f micro_f1=%.4f ci=[%.4f,%.4f]",
        side,
        source.name,
        len(texts),
        seconds,
        ci["value"],
        ci["low"],
        ci["high"],
    )
    return result, counts
