"""What every training run does the same way, classifier and NER alike: its name and folder, the MLflow run
with tags, config and runtime params, the fit loop with per-epoch metrics, the summary, the logged model."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from pydantic import BaseModel

from frontwire.lexical import LexicalScorer
from frontwire.paths import work_dir
from frontwire.records import Record
from frontwire.schema import LabelSchema
from frontwire.train.loop import FitResult, LoopSettings, fit
from frontwire.train.settings import MlflowSection, TrainingSection
from frontwire.train.tracking import log_config, log_model

log = logging.getLogger(__name__)

CHECKPOINTS_SUFFIX = ".checkpoints"
LEGACY_CHECKPOINTS = "checkpoints"  # inside the model dir, before checkpoints moved beside it


@dataclass
class TrainOutcome:
    model_dir: Path
    run_id: str
    version: str | None
    metrics: dict[str, Any]
    tracking_uri: str
    lexical: LexicalScorer | None = None  # the TF-IDF scorer fitted on the train split (the baseline's model)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """{"dev": {"micro": {"f1": x}, "per_label": {"strike": {"f1": y}}}} → {"dev_micro_f1": x, "dev_strike_f1": y}."""
    flat: dict[str, float] = {}
    for split in ("dev", "test"):
        block = metrics.get(split)
        if not block:
            continue
        for average in ("micro", "macro", "samples"):
            if average in block:
                for key, value in block[average].items():
                    flat[f"{split}_{average}_{key}"] = value
        for group in ("per_label", "per_type"):
            for name, values in block.get(group, {}).items():
                for key in ("precision", "recall", "f1"):
                    flat[f"{split}_{name}_{key}"] = values[key]
        if "exact_match" in block:
            flat[f"{split}_exact_match"] = block["exact_match"]
    return flat


def name_and_dir(kind: str, run_name: str | None, output_dir: str | None) -> tuple[str, Path]:
    """`<kind>-<UTC timestamp>` unless named; the model dir defaults to `<working folder>/models/<name>`."""
    name = run_name or f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return name, Path(output_dir) if output_dir else work_dir() / "models" / name


@contextmanager
def training_run(kind: str, name: str, schema: LabelSchema, config: BaseModel, params: dict[str, Any]) -> Iterator[Any]:
    """The MLflow run of one training: kind and schema tags, the flattened config and runtime params."""
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags({"frontwire.kind": kind, "frontwire.schema": schema.tag})
        log_config(config.model_dump(mode="json"))
        mlflow.log_params(params)
        yield run


def checkpoint_dir(output_dir: Path) -> Path:
    """`<model dir>.checkpoints`, beside the model dir: resume state (optimizer moments, ~3x the weights, in
    torch's pickle-based format) must never be part of a model dir that is copied, logged, registered or served.
    A checkpoint folder left inside the dir by an older frontwire is moved here, so its `--resume` still works."""
    folder = output_dir.with_name(output_dir.name + CHECKPOINTS_SUFFIX)
    legacy = output_dir / LEGACY_CHECKPOINTS
    if legacy.is_dir():
        if folder.exists():
            raise FileExistsError(f"{legacy} and {folder} both hold checkpoints: remove the one not to resume from")
        log.warning("checkpoints_moved from=%s to=%s (checkpoints no longer live in the model dir)", legacy, folder)
        legacy.rename(folder)
    return folder


def remove_checkpoints(folder: Path) -> None:
    """A finished run's checkpoints go: nothing resumes a completed run, and they are most of its bytes."""
    if folder.is_dir():
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        log.info("checkpoints_removed dir=%s bytes=%d", folder, size)


def _log_epoch(epoch: int, record: dict[str, float]) -> None:
    mlflow.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)


def tracked_fit(model, features: list[dict], training: TrainingSection,
                evaluate: Callable[[Any], tuple[float, dict[str, float]]], checkpoints: Path, *, pad_id: int,
                label_pad: int | None, head_prefixes: tuple[str, ...], device, resume: bool) -> FitResult:
    """`loop.fit` with the config's loop settings, each epoch's loss and dev metrics logged to the active run."""
    settings = LoopSettings(**{k: getattr(training, k) for k in LoopSettings.__dataclass_fields__})
    return fit(model, features, settings, evaluate, checkpoints, pad_id=pad_id, label_pad=label_pad,
               head_prefixes=head_prefixes, device=device, resume=resume, on_epoch=_log_epoch)


def fit_summary(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "seconds": round(result.seconds, 1),
        "steps": result.steps,
        "examples_per_second": round(result.examples_per_second, 2),
    }


def log_trained_model(output_dir: Path, kind: str, dev: list[Record], settings: MlflowSection) -> str | None:
    """Model dir + pyfunc model (its input example: the first dev paragraphs) logged; registered if configured."""
    examples = [r.text for r in dev[:3]] or ["Example."]
    return log_model(output_dir, kind, examples, settings.registered_model if settings.register_version else None)
