"""Model sources: a model dir, `models:/name@alias`, `models:/name/<version>`, or the registry default.

One resolver for every stage that loads a trained model (serve, batch inference, `labeling suggest`); the
default is the `champion` alias, then `candidate`, then the newest version, each fallback logged once.

A registered version is downloaded once into `<work dir>/serve-models/<name>/<version>/` (registry versions
are immutable) without the training checkpoints, which are most of the bytes and no use to a server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from frontwire.config import StrictModel
from frontwire.model_files import UnsafeModelFileError
from frontwire.modeling import META_FILE, ModelMeta
from frontwire.paths import default_tracking_uri, work_dir

log = logging.getLogger(__name__)

#: a training run's model dir artifacts (frontwire.train.tracking logs them; promotion, evaluation download)
MODEL_DIR_ARTIFACT = "model_dir"

FALLBACK_ALIAS = "candidate"
SKIPPED = ("checkpoints",)
_NAME = re.compile(r"[\w.\-]{1,256}")
_warned: set[str] = set()  # the registry watcher resolves every few seconds: each fallback is told once


def _warn_once(message: str, *args: object) -> None:
    key = message % args
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


class ModelSourceError(ValueError):
    """A model source that does not name a loadable model of the expected kind."""


@dataclass(frozen=True)
class ModelRef:
    kind: str
    model_dir: Path
    name: str
    version: str | None
    alias: str | None
    source: str

    def describe(self) -> dict[str, str | None]:
        return {k: v for k, v in asdict(self).items() if k not in ("model_dir", "kind")}


def registry_client(tracking_uri: str | None):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars garble service logs
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or default_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def download_version(client, name: str, version: str) -> Path:
    import mlflow.artifacts

    target = work_dir() / "serve-models" / name / str(version)
    if (target / META_FILE).is_file():
        return target
    root = client.get_model_version_download_uri(name, version)
    uri = client.tracking_uri
    found = [f for f in mlflow.artifacts.list_artifacts(artifact_uri=f"{root}/artifacts", tracking_uri=uri)
             if f.is_dir]
    model_path = next((f.path for f in found if any(
        g.path.endswith(META_FILE) for g in mlflow.artifacts.list_artifacts(
            artifact_uri=f"{root}/artifacts/{Path(f.path).name}", tracking_uri=uri))), None)
    if model_path is None:
        raise ModelSourceError(f"models:/{name}/{version} holds no frontwire model dir ({META_FILE})")
    folder = f"{root}/artifacts/{Path(model_path).name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged then renamed: two servers starting together never load a half-downloaded model.
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    try:
        for item in mlflow.artifacts.list_artifacts(artifact_uri=folder, tracking_uri=uri):
            if Path(item.path).name in SKIPPED:
                continue
            mlflow.artifacts.download_artifacts(artifact_uri=f"{folder}/{Path(item.path).name}",
                                                dst_path=str(staging), tracking_uri=uri)
        with contextlib.suppress(OSError):  # another process won the race: its copy is identical
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("model_download name=%s version=%s into=%s", name, version, target)
    return target


def parse_models_uri(source: str) -> tuple[str, str | None, str | None]:
    """`models:/name@alias` → (name, None, alias); `models:/name/3` → (name, "3", None); `models:/name` → newest."""
    rest = source.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        version = None
    else:
        name, _, version, alias = *rest.partition("/"), None
    # The name ends up in a registry search filter: only the characters registry names use get that far.
    if not _NAME.fullmatch(name) or (alias is not None and not _NAME.fullmatch(alias)) or (
            version and not version.isdigit()):
        raise ModelSourceError(f"{source[:200]!r}: expected models:/name@alias or models:/name/<version number>")
    return name, version or None, alias


def _from_registry(client, kind: str, name: str, version: str | None, alias: str | None, source: str,
                   fallback: bool) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            try:
                version = client.get_model_version_by_alias(name, alias).version
            except MlflowException:
                if not fallback:
                    raise
                _warn_once("model_alias_missing name=%s alias=%s fallback=%s", name, alias, FALLBACK_ALIAS)
                return _from_registry(client, kind, name, None, FALLBACK_ALIAS if alias != FALLBACK_ALIAS else None,
                                      source, fallback)
        if version is None:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise ModelSourceError(f"registered model {name!r} has no versions")
            version = str(max(int(v.version) for v in versions))
            _warn_once("model_newest_version name=%s version=%s (no alias)", name, version)
        model_dir = download_version(client, name, str(version))
    except MlflowException as err:
        raise ModelSourceError(f"{source}: {err.message}") from err
    return ModelRef(kind, model_dir, name, str(version), alias, source)


def resolve_model(source: str | None, kind: str, registered_name: str, alias: str = "champion",
                  tracking_uri: str | None = None) -> ModelRef | None:
    """A ModelRef for `source`; None when no source is given and nothing of that name is registered."""
    if source is None:
        client = registry_client(tracking_uri)
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(registered_name)
        except MlflowException:
            _warn_once("model_not_registered name=%s store=%s", registered_name, client.tracking_uri)
            return None
        ref = _from_registry(client, kind, registered_name, None, alias, f"models:/{registered_name}@{alias}", True)
    elif source.startswith("models:/"):
        name, version, wanted_alias = parse_models_uri(source)
        ref = _from_registry(registry_client(tracking_uri), kind, name, version, wanted_alias, source, False)
    else:
        try:  # a name too long for the file system or a NUL byte is a bad source, not a server fault
            path = Path(source).expanduser()
            found = (path / META_FILE).is_file()
        except (OSError, ValueError, RuntimeError):
            found = False
        if not found:
            raise ModelSourceError(f"{source[:200]}: not a frontwire model dir (no {META_FILE})")
        ref = ModelRef(kind, path.resolve(), "", None, None, source)
    try:
        meta = ModelMeta.load(ref.model_dir)
    except UnsafeModelFileError as err:  # a pickle in the dir: the message names it and says why
        raise ModelSourceError(f"{source}: {err}") from err
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"{source}: unreadable {META_FILE}: {err}") from err
    if meta.kind != kind:
        raise ModelSourceError(f"{source} is a {meta.kind} model, not a {kind} model")
    return ref if ref.name else ModelRef(kind, ref.model_dir, meta.name, None, None, source)


class ModelSourcesSection(StrictModel):
    """Which trained models a stage loads (the `models` section of serve.yaml and predict.yaml).

    `classifier` / `ner`: a model dir, `models:/name@alias` or `models:/name/<version>`; null = the registered
    model's `alias` version in the tracking store (with the fallbacks `resolve_model` logs).
    """

    classifier: str | None = None
    ner: str | None = None
    registered_classifier: str = "frontwire-classifier"
    registered_ner: str = "frontwire-ner"
    alias: str = "champion"
    tracking_uri: str | None = None

    def registered(self, kind: str) -> str:
        return self.registered_classifier if kind == "classifier" else self.registered_ner

    def resolve(self, kind: str, source: str | None = None) -> ModelRef | None:
        """`kind`'s model: `source` if given, else the configured one, else the registry default (None if unset)."""
        configured = self.classifier if kind == "classifier" else self.ner
        return resolve_model(source or configured, kind, self.registered(kind), self.alias, self.tracking_uri)
