"""MLflow tracking for training runs: store set-up, params, dataset inputs, pyfunc model, registry aliases."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from frontwire.config import flatten
from frontwire.model_sources import MODEL_DIR_ARTIFACT
from frontwire.paths import default_artifact_root, default_tracking_uri
from frontwire.records import Record

log = logging.getLogger(__name__)

CANDIDATE, CHAMPION = "candidate", "champion"
SOURCE_TAG = "dataset.source"  # the records the run trained on: promotion rebuilds their dev split

try:  # the store's own limit, so no param is ever rejected or silently cut by the server
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
except ImportError:  # pragma: no cover - older MLflow
    MAX_PARAM_VAL_LENGTH = 500


def setup_tracking(tracking_uri: str | None, experiment: str) -> str:
    """Point MLflow at the store and make sure the experiment exists, with artifacts beside the store."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
            root = (
                Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
                if uri.startswith("sqlite:///")
                else default_artifact_root()
            )
            location = (root / experiment).resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return uri


def log_config(config: Mapping[str, Any]) -> None:
    params = {}
    for key, value in flatten(config).items():
        text = "null" if value is None else str(value)
        params[key] = text if len(text) <= MAX_PARAM_VAL_LENGTH else text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
    mlflow.log_params(params)


def log_splits(parts: Mapping[str, list[Record]], description: Mapping[str, Any], label_field: str) -> None:
    """Each split as an MLflow dataset input (name carries the content fingerprint) plus summary params."""
    for name, records in parts.items():
        frame = pd.DataFrame(
            {
                "id": [r.id for r in records],
                "text": [r.text for r in records],
                label_field: [",".join(r.labels) if label_field == "labels" else len(r.entities) for r in records],
            }
        )
        dataset = mlflow.data.from_pandas(
            frame,
            source=str(description.get("source", "")),
            name=f"{name}-{description.get(f'{name}_fingerprint', '')}",
        )
        mlflow.log_input(dataset, context=name)
    mlflow.set_tags({"dataset.fingerprint": description.get("fingerprint"), SOURCE_TAG: description.get("source")})
    mlflow.log_params({f"data.{k}": v for k, v in description.items() if k != "source"})


def register(run_id: str, artifact_path: str, name: str, model_uri: str | None = None) -> str:
    """Register the run's pyfunc model as a new version of `name` and point alias `candidate` at it."""
    uri = model_uri or f"runs:/{run_id}/{artifact_path}"
    version = mlflow.register_model(uri, name)
    client = MlflowClient()
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    log.info("registered model=%s version=%s alias=%s", name, version.version, CANDIDATE)
    return str(version.version)


def log_model(model_dir: Path, kind: str, example_texts: list[str], registered_model: str | None) -> str | None:
    """Log the model dir as artifacts and as a pyfunc model (signature + input example); register it."""
    from frontwire.modeling import ModelMeta
    from frontwire.train.pyfunc import CODE_FILE, signature

    example = pd.DataFrame({"text": example_texts})
    # the model dir holds the model only (checkpoints live beside it: frontwire.train.run_steps.checkpoint_dir)
    mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_DIR_ARTIFACT)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(CODE_FILE),  # models from code: no cloudpickle of frontwire in the registered model
        artifacts={kind: str(model_dir)},
        signature=signature(kind, ModelMeta.load(model_dir).labels),
        input_example=example,
        pip_requirements=_requirements(),
    )
    if not registered_model:
        return None
    return register(mlflow.active_run().info.run_id, "model", registered_model, info.model_uri)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("frontwire", "torch", "transformers", "mlflow", "pandas")]


def log_domain_run(config: Any, archives: list[str], metrics: Mapping[str, float], model_dir: Path) -> str:
    """One MLflow run for a domain adaptation: the validated config, archives, held-out MLM loss before/after."""
    setup_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    with mlflow.start_run(run_name=f"domain-{model_dir.name}") as run:
        log_config({**config.model_dump(mode="json"), "archives_used": ",".join(archives)})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({"frontwire.kind": "domain-adapted encoder", "frontwire.model_dir": str(model_dir)})
        return run.info.run_id
