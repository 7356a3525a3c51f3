"""Which models a batch job runs: a model folder, a registry URI, or by default the registry's `champion`.

Every source resolves (frontwire.model_sources, as for serving) to a local model folder (what `Predictor` loads,
in this process or in a worker) and a version string written into each output row, so a row always says which
model produced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from frontwire.model_sources import ModelSourceError, ModelSourcesSection
from frontwire.modeling import ModelMeta
from frontwire.paths import default_tracking_uri
from frontwire.serve.batch import shards
from frontwire.serve.batch.runners import PredictorSpec
from frontwire.serve.batch.settings import RuntimeSection

log = logging.getLogger(__name__)


class ModelResolutionError(ValueError):
    """A model source that names nothing loadable; the message says what to pass instead."""


@dataclass(frozen=True)
class ResolvedModel:
    kind: str
    directory: Path
    version: str  # "frontwire-classifier/3" for the registry, "dir:<model name>" for a folder


@dataclass(frozen=True)
class JobModels:
    """The resolved models of one batch job and what both engines (local and Spark) derive from them."""

    classifier: ResolvedModel | None
    ner: ResolvedModel | None

    @property
    def versions(self) -> dict[str, str]:
        return {m.kind: m.version for m in (self.classifier, self.ner) if m is not None}

    def spec(self, runtime: RuntimeSection) -> PredictorSpec:
        return PredictorSpec(self.classifier.directory if self.classifier else None,
                             self.ner.directory if self.ner else None,
                             runtime.device, runtime.batch_size, runtime.backend)

    def row_schema(self, include_text: bool):
        labels = ModelMeta.load(self.classifier.directory).labels if self.classifier is not None else None
        return shards.row_schema(labels, self.ner is not None, include_text)


def job_models(cfg: ModelSourcesSection,
               given: tuple[ResolvedModel | None, ResolvedModel | None] | None = None) -> JobModels:
    return JobModels(*(given if given is not None else resolve_models(cfg)))


def resolve_models(cfg: ModelSourcesSection) -> tuple[ResolvedModel | None, ResolvedModel | None]:
    classifier, ner = resolve("classifier", cfg), resolve("ner", cfg)
    if classifier is None and ner is None:
        raise ModelResolutionError("both models are 'none': nothing to predict")
    return classifier, ner


def resolve(kind: str, cfg: ModelSourcesSection) -> ResolvedModel | None:
    source = cfg.classifier if kind == "classifier" else cfg.ner
    if source is not None and source.lower() == "none":
        return None
    advice = f"train one (`frontwire train {kind}`), pass --{kind} MODEL_DIR, or --{kind} none to skip it"
    try:
        ref = cfg.resolve(kind)
    except ModelSourceError as err:
        raise ModelResolutionError(f"--{kind}: {err}; {advice}") from err
    if ref is None:
        store = cfg.tracking_uri or default_tracking_uri()
        raise ModelResolutionError(f"no registered {kind} model {cfg.registered(kind)!r} in {store}: {advice}")
    version = f"{ref.name}/{ref.version}" if ref.version else f"dir:{ref.name}"
    log.info("batch.model kind=%s version=%s dir=%s", kind, version, ref.model_dir)
    return ResolvedModel(kind, ref.model_dir, version)


def from_directory(kind: str, directory: Path) -> ResolvedModel:
    try:
        meta = ModelMeta.load(directory)
    except FileNotFoundError as err:
        raise ModelResolutionError(f"--{kind} {directory}: {err}") from err
    if meta.kind != kind:
        raise ModelResolutionError(f"--{kind} {directory}: that is a {meta.kind} model")
    return ResolvedModel(kind, directory.resolve(), f"dir:{meta.name}")
