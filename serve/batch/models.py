"""Which models a batch job runs: a model folder, a registry URI, or by default the registry's `champion`.

Every source resolves to a local model folder (what `Predictor` loads, in this process or in a worker)
and a version string written into each output row, so a row always says which model produced it.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from frontwire.modeling import META_FILE, ModelMeta
from frontwire.paths import default_tracking_uri, work_dir
from frontwire.serve.batch.settings import ModelsSection

log = logging.getLogger(__name__)


class ModelResolutionError(ValueError):
    """A model source that names nothing loadable; the message says what to pass instead."""


@dataclass(frozen=True)
class ResolvedModel:
    kind: str
    directory: Path
    version: str  # "frontwire-classifier/3" for the registry, "dir:<model name>" for a folder


def resolve_models(cfg: ModelsSection) -> tuple[ResolvedModel | None, ResolvedModel | None]:
    classifier = resolve("classifier", cfg.classifier, cfg.registered_classifier, cfg)
    ner = resolve("ner", cfg.ner, cfg.registered_ner, cfg)
    if classifier is None and ner is None:
        raise ModelResolutionError("both models are 'none': nothing to predict")
    return classifier, ner


def resolve(kind: str, source: str | None, registered: str, cfg: ModelsSection) -> ResolvedModel | None:
    if source is not None and source.lower() == "none":
        return None
    if source is None:
        return _from_registry(kind, registered, None, cfg)
    if source.startswith("models:/"):
        name, _, ref = source.removeprefix("models:/").partition("@")
        if ref:
            return _from_registry(kind, name, ("alias", ref), cfg)
        name, _, version = name.partition("/")
        return _from_registry(kind, name, ("version", version) if version else None, cfg)
    return from_directory(kind, Path(source))


def from_directory(kind: str, directory: Path) -> ResolvedModel:
    try:
        meta = ModelMeta.load(directory)
    except FileNotFoundError as err:
        raise ModelResolutionError(f"--{kind} {directory}: {err}") from err
    if meta.kind != kind:
        raise ModelResolutionError(f"--{kind} {directory}: that is a {meta.kind} model")
    return ResolvedModel(kind, directory.resolve(), f"dir:{meta.name}")


def _from_registry(kind: str, name: str, ref: tuple[str, str] | None, cfg: ModelsSection) -> ResolvedModel:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = cfg.tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    try:
        if ref is None:  # the default: alias `champion`, else the newest version
            try:
                version = client.get_model_version_by_alias(name, cfg.alias).version
            except MlflowException:
                versions = client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise
                version = str(max(int(v.version) for v in versions))
        elif ref[0] == "alias":
            version = client.get_model_version_by_alias(name, ref[1]).version
        else:
            version = ref[1]
        download_uri = client.get_model_version_download_uri(name, version)
    except MlflowException as err:
        reason = err.message.splitlines()[0]
        raise ModelResolutionError(
            f"no registered {kind} model {name!r}{' @' + ref[1] if ref else ''} in {uri} ({reason}):"
            f" train one (`frontwire train {kind}`), pass --{kind} MODEL_DIR, or --{kind} none to skip it") from err
    directory = _local_model_dir(kind, name, str(version), download_uri, uri)
    log.info("batch.model kind=%s name=%s version=%s dir=%s", kind, name, version, directory)
    return ResolvedModel(kind, directory, f"{name}/{version}")


def _local_model_dir(kind: str, name: str, version: str, download_uri: str, tracking_uri: str) -> Path:
    """The registered pyfunc keeps the model folder under `artifacts/<folder>/`: use it in place when the
    store is on this disk, else download it once into a cache (it can be hundreds of MB)."""
    parsed = urlparse(download_uri)
    if parsed.scheme in ("", "file") and Path(unquote(parsed.path)).is_dir():
        return _model_folder(Path(unquote(parsed.path)), kind, download_uri)
    cache = work_dir() / "model-cache" / name / version
    if not (cache / ".complete").is_file():
        import mlflow

        tmp = cache.with_name(version + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(tmp))
        (tmp / ".complete").touch()
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
    return _model_folder(cache, kind, download_uri)


def _model_folder(root: Path, kind: str, where: str) -> Path:
    for meta_path in sorted((root / "artifacts").glob(f"*/{META_FILE}")):
        if ModelMeta.load(meta_path.parent).kind == kind:
            return meta_path.parent.resolve()
    raise ModelResolutionError(f"{where}: no frontwire {kind} model folder under artifacts/")
