"""Model specs → model directories and loaded scorers.

runs/models/classifier-…        a model directory (frontwire.json inside)
runs:/<run_id>                   the run's `model_dir/` artifacts (what training logs)
models:/<name>@<alias>           a registered version (frontwire.model_sources' download cache)
models:/<name>/<version>
baseline:tfidf                   the TF-IDF baseline, trained on the data's train split (classifier only)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontwire.metrics import multilabel_indicator, tune_thresholds
from frontwire.model_sources import MODEL_DIR_ARTIFACT, ModelSourceError
from frontwire.modeling import META_FILE, ModelMeta
from frontwire.predictor import decode_topics
from frontwire.records import Record
from frontwire.schema import LabelSchema

log = logging.getLogger(__name__)

BASELINE = "baseline:tfidf"
_LOGGED_MODEL = re.compile(r"^models:/(m-[0-9a-f]+)$")


class ModelSpecError(ModelSourceError):
    """A model argument that does not lead to a frontwire model."""


@dataclass
class ModelSource:
    spec: str
    origin: str  # dir | run | registry | baseline
    kind: str
    meta: ModelMeta | None = None  # None for the baseline
    model_dir: Path | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None
    model_id: str | None = None  # MLflow 3 logged-model id of a registered version

    @property
    def name(self) -> str:
        if self.origin == "baseline":
            return BASELINE
        return f"{self.registered_name} v{self.version}" if self.registered_name else self.meta.name

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "origin": self.origin,
            "kind": self.kind,
            "name": self.name,
            "model_dir": str(self.model_dir) if self.model_dir else None,
            "run_id": self.run_id,
            "registered_model": self.registered_name,
            "version": self.version,
            "alias": self.alias,
            "model_id": self.model_id,
            "schema": self.meta.schema_.tag if self.meta else None,
        }


def resolve_model(spec: str, tracking_uri: str, download_dir: Path) -> ModelSource:
    if spec == BASELINE:
        return ModelSource(spec, "baseline", "classifier")
    if spec.startswith("runs:/"):
        run_id, _, path = spec.removeprefix("runs:/").partition("/")
        return _from_run(ModelSource(spec, "run", ""), run_id, path or MODEL_DIR_ARTIFACT, tracking_uri, download_dir)
    if spec.startswith("models:/"):
        return _from_registry(spec, tracking_uri)
    path = Path(spec)
    if not (path / META_FILE).is_file():
        raise ModelSpecError(
            f"{spec}: not a model directory (no {META_FILE}), runs:/<id>, models:/<name>@<alias>, "
            f"models:/<name>/<version> or {BASELINE}"
        )
    return _with_meta(ModelSource(spec, "dir", ""), path)


def _with_meta(source: ModelSource, model_dir: Path) -> ModelSource:
    source.model_dir = model_dir
    try:
        source.meta = ModelMeta.load(model_dir)
    except ValueError as err:  # a refused file (a planted pickle) or a broken frontwire.json: exit 2, not a trace
        raise ModelSpecError(f"{source.spec}: {err}") from err
    source.kind = source.meta.kind
    return source


def _from_run(source: ModelSource, run_id: str, path: str, tracking_uri: str, download_dir: Path) -> ModelSource:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
        # a copy even from a local store: the evaluation never reads or locks files inside the store
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, tracking_uri=tracking_uri, dst_path=str(download_dir / run_id)
        )
    except MlflowException as err:
        raise ModelSpecError(
            f"{source.spec}: run {run_id} or its {path!r} artifacts not found in {tracking_uri}: {err.message}"
        ) from err
    if not (Path(local) / META_FILE).is_file():
        raise ModelSpecError(f"{source.spec}: artifacts {path!r} of run {run_id} hold no {META_FILE}")
    source.run_id, source.experiment_id = run_id, run.info.experiment_id
    log.info("model_resolved spec=%s run=%s dir=%s", source.spec, run_id, local)
    return _with_meta(source, Path(local))


def _from_registry(spec: str, tracking_uri: str) -> ModelSource:
    """A registered version through the core resolver's parsing and download cache (versions are immutable),
    plus the run and logged-model ids the evaluation's metrics are attached to."""
    from mlflow.exceptions import MlflowException

    from frontwire.model_sources import ModelSourceError, download_version, parse_models_uri, registry_client

    try:
        name, number, alias = parse_models_uri(spec)
    except ModelSourceError as err:
        raise ModelSpecError(str(err)) from err
    if number is None and alias is None:
        raise ModelSpecError(f"{spec}: name a version or an alias: models:/<name>/<version>, models:/<name>@<alias>")
    client = registry_client(tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, number)
        if not version.run_id:
            raise ModelSpecError(f"{spec}: version {version.version} has no source run")
        experiment_id = client.get_run(version.run_id).info.experiment_id
        model_dir = download_version(client, name, str(version.version))
    except MlflowException as err:
        raise ModelSpecError(f"{spec}: not in the registry at {tracking_uri}: {err.message}") from err
    except ModelSourceError as err:
        raise ModelSpecError(str(err)) from err
    # MLflow 3 versions registered from a logged model carry its id in `source` (models:/m-…), not always in
    # `model_id`; the id is where the evaluation's metrics get attached
    logged = _LOGGED_MODEL.match(version.source or "")
    source = ModelSource(
        spec,
        "registry",
        "",
        run_id=version.run_id,
        experiment_id=experiment_id,
        registered_name=name,
        version=str(version.version),
        alias=alias,
        model_id=version.model_id or (logged.group(1) if logged else None),
    )
    log.info("model_resolved spec=%s run=%s dir=%s", spec, version.run_id, model_dir)
    return _with_meta(source, model_dir)


def load_scorer(source: ModelSource, device: str):
    from frontwire.predictor import EntityModel, TopicModel

    return (TopicModel if source.kind == "classifier" else EntityModel).load(source.model_dir, device)


class TfidfBaseline:
    """The training baseline's protocol (frontwire.train.baseline): TF-IDF + logistic regression fitted on the
    train split, per-label thresholds tuned on dev, exclusive labels decoded as the transformer's are."""

    def __init__(self, schema: LabelSchema, train: list[Record], dev: list[Record], seed: int = 13) -> None:
        from frontwire.lexical import LexicalScorer

        if not train:
            raise ModelSpecError(f"{BASELINE}: the data has no train split to fit on (use a records folder or export)")
        self.labels, self.exclusive = schema.topic_names, schema.exclusive_topics
        y_train = multilabel_indicator([r.labels for r in train], self.labels)
        self.scorer = LexicalScorer(self.labels, seed).fit([r.text for r in train], y_train)
        y_dev = multilabel_indicator([r.labels for r in dev], self.labels)
        self.thresholds = tune_thresholds(y_dev, self.scorer.scores([r.text for r in dev]), self.labels)
        log.info("baseline_fitted train=%d dev=%d", len(train), len(dev))

    def scores(self, texts: list[str], batch_size: int = 0):
        return self.scorer.scores(texts)

    def decode(self, row) -> list[str]:
        return decode_topics(row, self.labels, self.thresholds, self.exclusive)
