"""Where things live by default: shared data, the sample data, the working folder, the MLflow store."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import frontwire

SHARED_ENV = "FRONTWIRE_SHARED_DIR"
HOME_ENV = "FRONTWIRE_HOME"
REPO_ROOT = Path(frontwire.__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """`../shared` beside the checkout (or the working folder), or $FRONTWIRE_SHARED_DIR."""
    if os.environ.get(SHARED_ENV):
        path = Path(os.environ[SHARED_ENV])
        return path if path.is_dir() else None
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base.parent / "shared"
        if (candidate / "data").is_dir():
            return candidate
    return None


def sample_export() -> Path:
    return Path(str(resources.files("frontwire.sample_data").joinpath("sample_export.json")))


def default_export() -> Path:
    """The shared Label Studio export where present, else the project's own sample."""
    shared = shared_dir()
    if shared is not None and (shared / "data" / "labelstudio_export.json").is_file():
        return shared / "data" / "labelstudio_export.json"
    return sample_export()


def shared_archives() -> list[Path]:
    """The shared unlabeled archive, as a list (empty where ../shared is absent)."""
    shared = shared_dir()
    archive = shared / "data" / "archive_articles.jsonl.gz" if shared else None
    return [archive] if archive is not None and archive.is_file() else []


def work_dir() -> Path:
    return Path(os.environ.get(HOME_ENV, "runs")).resolve()


def default_data_dir() -> Path:
    return work_dir() / "data"


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{work_dir() / 'mlflow.db'}"


def default_artifact_root() -> Path:
    return work_dir() / "mlartifacts"
