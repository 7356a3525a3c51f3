"""The evaluation as an MLflow run (tag frontwire.kind=evaluation), linked to the models it scored.

A model from the registry is linked three ways: tags naming model, version, alias and source run; the run
sits in the source run's experiment; and, with MLflow 3, the metrics are also attached to the version's
logged model (model_id), where the registry UI shows them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from frontwire.evaluate.data import EvalData
from frontwire.evaluate.models import ModelSource

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "frontwire-evaluation"
PREFIXES = {"a": ("frontwire.model", ""), "b": ("frontwire.model_b", "b_")}


def flat_metrics(payload: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per side: headline metrics with interval bounds, per-class F1, calibration and error counts."""
    sides: dict[str, dict[str, float]] = {}
    for side, result in payload["models"].items():
        flat: dict[str, float] = {}
        for name, ci in result["confidence_intervals"].items():
            flat.update({name: ci["value"], f"{name}_ci_low": ci["low"], f"{name}_ci_high": ci["high"]})
        group = result["metrics"].get("per_label") or result["metrics"].get("per_type") or {}
        flat.update({f"{name}_f1": values["f1"] for name, values in group.items()})
        if "calibration" in result:
            flat.update({f"{k}_ece": v["ece"] for k, v in result["calibration"]["per_label"].items()})
            flat["macro_ece"] = result["calibration"]["macro_ece"]
        if "error_breakdown" in result:
            flat.update({f"errors_{k}": float(v) for k, v in result["error_breakdown"]["counts"].items()})
        flat["paragraphs_per_second"] = result["timing"]["paragraphs_per_second"] or 0.0
        sides[side] = flat
    return sides


def log_evaluation(
    payload: dict[str, Any],
    sources: list[ModelSource],
    data: EvalData,
    out_dir: Path,
    tracking_uri: str,
    experiment: str | None,
) -> str:
    from mlflow.tracking import MlflowClient

    from frontwire.train.tracking import SOURCE_TAG, setup_tracking

    home = next((s for s in sources if s.experiment_id), None)
    if experiment is None and home is not None:
        experiment = MlflowClient(tracking_uri=tracking_uri).get_experiment(home.experiment_id).name
    setup_tracking(tracking_uri, experiment or DEFAULT_EXPERIMENT)
    flat = flat_metrics(payload)
    names = "-vs-".join(s.name.replace(" ", "") for s in sources)
    with mlflow.start_run(run_name=f"evaluate-{names}-{data.split}") as run:
        tags = {
            "frontwire.kind": "evaluation",
            "frontwire.evaluation.kind": payload["kind"],
            SOURCE_TAG: data.source,
            "dataset.split": data.split,
            "dataset.fingerprint": payload["data"]["fingerprint"],
        }
        for side, source in zip(PREFIXES, sources, strict=False):
            prefix = PREFIXES[side][0]
            values = {
                "spec": source.spec,
                "name": source.registered_name or source.name,
                "version": source.version,
                "alias": source.alias,
                "run_id": source.run_id,
                "model_id": source.model_id,
            }
            tags.update({f"{prefix}.{k}": str(v) for k, v in values.items() if v is not None})
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "data.source": data.source,
                "data.format": data.format,
                "data.split": data.split,
                "data.records": len(data.records),
                "data.input_errors": payload["data"]["input_errors"],
                "bootstrap.n_resamples": payload["bootstrap"]["n_resamples"],
                "bootstrap.seed": payload["bootstrap"]["seed"],
            }
        )
        frame = pd.DataFrame({"id": [r.id for r in data.records], "text": [r.text for r in data.records]})
        dataset = mlflow.data.from_pandas(
            frame, source=data.source, name=f"{data.split}-{payload['data']['fingerprint']}"
        )
        mlflow.log_input(dataset, context="evaluation")
        for side, values in flat.items():
            mlflow.log_metrics({PREFIXES[side][1] + k: v for k, v in values.items()})
        if payload["comparison"]:
            paired = payload["comparison"]["paired_bootstrap"]
            mlflow.log_metrics(
                {
                    f"diff_{k}{suffix}": c[key]
                    for k, c in paired.items()
                    for suffix, key in (("", "value"), ("_ci_low", "low"), ("_ci_high", "high"))
                }
            )
        for side, source in zip(PREFIXES, sources, strict=False):
            if source.model_id:
                mlflow.log_metrics(
                    {f"eval_{data.split}_{k}": v for k, v in flat[side].items()},
                    model_id=source.model_id,
                    dataset=dataset,
                )
        mlflow.log_artifacts(str(out_dir))
        run_id = run.info.run_id
    log.info("evaluation_logged run=%s experiment=%s uri=%s", run_id, experiment or DEFAULT_EXPERIMENT, tracking_uri)
    return run_id
