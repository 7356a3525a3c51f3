"""`frontwire train benchmark`: check the training code on public benchmarks (not part of CI).

Trains on a benchmark's train split (readers in `benchmark_data`), early-stops and tunes on dev, scores test.
The figures go to a results JSON (one entry per benchmark, merged into an existing file) next to the
published anchors, and the run is logged to MLflow experiment `frontwire-benchmarks`, unregistered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frontwire.conll import token_spans
from frontwire.metrics import entity_metrics
from frontwire.paths import work_dir
from frontwire.records import Record
from frontwire.train.benchmark_data import format_error, load_benchmark

log = logging.getLogger(__name__)

EXPERIMENT = "frontwire-benchmarks"


def conll_token_metrics(
    records: Sequence[Record], predicted: Sequence[Sequence[tuple[int, int, str]]]
) -> dict[str, Any]:
    """seqeval strict IOB2 over the files' own tokens (as conlleval scores CoNLL): a predicted span tags
    every token it overlaps, its first token B-."""
    gold = [[(s.start, s.end, s.label) for s in r.entities] for r in records]
    return entity_metrics([r.text for r in records], gold, predicted, words=token_spans)


def run_benchmark(
    name: str,
    overrides: Sequence[str] = (),
    limit: int | None = None,
    out: Path | str | None = None,
    config_path: Path | str | None = None,
) -> dict[str, Any]:
    """Train on train, early-stop (and tune thresholds) on dev, score test; write and log the results."""
    import mlflow

    from frontwire.train.settings import load_classifier_config, load_ner_config

    loaded = load_benchmark(name, None)
    bench = loaded.benchmark
    defaults = (f"mlflow.experiment={EXPERIMENT}", "mlflow.register=false")
    if bench.kind == "classifier":
        # the baseline's figures are computed below and logged into the benchmark's own run; the trainer's
        # baseline would also log a sklearn model (pip-requirement inference: a subprocess, minutes on 2 cores)
        defaults = (*defaults, "mlflow.baseline=false")
    loader = load_ner_config if bench.kind == "ner" else load_classifier_config
    config = loader(config_path, (*defaults, *overrides))
    data = loaded.data.limited(limit or config.data.limit)
    run_name = f"benchmark-{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    log.info(
        "benchmark=%s kind=%s train=%d dev=%d test=%d skipped_lines=%d",
        name,
        bench.kind,
        len(data.train),
        len(data.dev),
        len(data.test),
        len(loaded.errors),
    )

    started = time.perf_counter()
    if bench.kind == "ner":
        from frontwire.train.ner import train_ner

        outcome = train_ner(config, loaded.schema, data, run_name=run_name)
    else:
        from frontwire.train.classifier import train_classifier

        outcome = train_classifier(config, loaded.schema, data, run_name=run_name)
    metrics = outcome.metrics
    result: dict[str, Any] = {
        "benchmark": name,
        "kind": bench.kind,
        "description": bench.description,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            **data.describe(),
            "limit": limit or config.data.limit,
            "skipped_lines": len(loaded.errors),
            "skipped_first": [format_error(e) for e in loaded.errors[:20]],
        },
        "schema": {"topics": loaded.schema.topic_names, "entities": loaded.schema.entity_names},
        "base_model": config.model.base_model,
        "config": config.model_dump(mode="json"),
        "model_dir": str(outcome.model_dir),
        "run_id": outcome.run_id,
        "tracking_uri": outcome.tracking_uri,
        "experiment": config.mlflow.experiment,
        "training": metrics.get("training"),
        "dev": metrics.get("dev"),
        "test": metrics.get("test"),
        "anchors": list(bench.anchors),
        "target": bench.target,
    }

    if bench.kind == "ner":
        headline = _ner_figures(outcome, config, data.test, result)
    else:
        headline = _classifier_figures(outcome, data, loaded.schema, result)
    value = headline[bench.headline]
    result["headline"] = {
        "metric": bench.headline,
        "value": value,
        "target": bench.target,
        "meets_target": None if bench.target is None else value >= bench.target,
        **headline,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)

    path = write_results(result, out)
    result["results_file"] = str(path)
    with mlflow.start_run(run_id=outcome.run_id):
        mlflow.set_tags({"frontwire.benchmark": name, "frontwire.benchmark.limited": str(limit is not None)})
        mlflow.log_metrics({f"benchmark_{k}": float(v) for k, v in headline.items() if isinstance(v, int | float)})
        mlflow.log_dict(result, f"benchmark_{name}.json")
    log.info("benchmark=%s %s=%.4f seconds=%.0f results=%s", name, bench.headline, value, result["seconds"], path)
    return result


def _ner_figures(outcome, config, test: list[Record], result: dict[str, Any]) -> dict[str, Any]:
    """Test scored conlleval-style on the files' own tokens (the published figures' convention)."""
    from frontwire.predictor import EntityModel

    model = EntityModel.load(outcome.model_dir, config.training.device, threads=config.training.threads)
    predicted = [[(e["start"], e["end"], e["label"]) for e in ents] for ents in model.entities([r.text for r in test])]
    result["test_conll_tokens"] = conll_token_metrics(test, predicted)
    metrics = outcome.metrics
    return {
        "test_entity_f1": result["test_conll_tokens"]["micro"]["f1"],
        "test_entity_f1_word_spans": metrics["test"]["micro"]["f1"],
        "test_per_type_f1": {k: v["f1"] for k, v in result["test_conll_tokens"]["per_type"].items()},
        "dev_entity_f1": metrics["dev"]["micro"]["f1"],
    }


def _classifier_figures(outcome, data, schema, result: dict[str, Any]) -> dict[str, Any]:
    """Test micro/macro-F1 beside the TF-IDF baseline's on the same split."""
    metrics = outcome.metrics
    baseline = metrics.get("baseline")
    if baseline is None:
        from frontwire.train.baseline import train_baseline

        baseline = train_baseline(data, schema, scorer=outcome.lexical)
    result["baseline"] = {
        "model": "TF-IDF (1-2 grams) + logistic regression, thresholds tuned on dev",
        **{
            split: {"micro_f1": baseline[split]["micro"]["f1"], "macro_f1": baseline[split]["macro"]["f1"]}
            for split in ("dev", "test")
            if split in baseline
        },
    }
    result["lexical_weight"] = metrics.get("lexical_weight")
    return {
        "test_micro_f1": metrics["test"]["micro"]["f1"],
        "test_macro_f1": metrics["test"]["macro"]["f1"],
        "dev_micro_f1": metrics["dev"]["micro"]["f1"],
        "dev_macro_f1": metrics["dev"]["macro"]["f1"],
        "baseline_test_micro_f1": result["baseline"].get("test", {}).get("micro_f1"),
        "baseline_test_macro_f1": result["baseline"].get("test", {}).get("macro_f1"),
    }


def write_results(result: dict[str, Any], out: Path | str | None = None) -> Path:
    """Merge `result` into the results JSON under its benchmark's name (other benchmarks' entries stay)."""
    path = Path(out) if out else work_dir() / "benchmarks" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            log.warning("results file %s is not JSON: overwriting it", path)
        if not isinstance(existing, dict):
            existing = {}
    existing[result["benchmark"]] = result
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(existing, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
