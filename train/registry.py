"""`frontwire promote`: move alias `champion` to a registered version only when it beats the champion on the
same dev set.

Every training run registers a version with alias `candidate` (frontwire.train.tracking.register). Promotion
compares that version (or `--version N`) with the current `champion`:

- both runs logged the same dev fingerprint (run param `data.dev_fingerprint`): their logged final dev metrics
  are compared (classifier: `dev_macro_f1`, ties broken by `dev_micro_f1`; NER: `dev_micro_f1`);
- the fingerprints differ: both models are re-evaluated on the candidate's dev split (records from the
  candidate run's tag `dataset.source`, model dirs from the runs' `model_dir/` artifacts) with the predictor and
  metrics that training uses, and those figures are compared;
- no champion yet: the candidate is promoted; `--force` promotes whatever the comparison says.

The decision, its reason and both figures are returned, and recorded as `promotion.*` tags on the version.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from frontwire.paths import default_tracking_uri
from frontwire.train.tracking import CANDIDATE, CHAMPION

log = logging.getLogger(__name__)

KINDS = ("classifier", "ner")
DEFAULT_REGISTERED_MODELS = {"classifier": "frontwire-classifier", "ner": "frontwire-ner"}
#: compared in order: the first differs decides, later ones break ties
COMPARED_METRICS = {"classifier": ("dev_macro_f1", "dev_micro_f1"), "ner": ("dev_micro_f1",)}
DEV_FINGERPRINT_PARAM = "data.dev_fingerprint"
DEV_SIZE_PARAM = "data.dev_size"
SOURCE_TAG = "dataset.source"
MODEL_DIR_ARTIFACT = "model_dir"
TAG_PREFIX = "promotion."
TOLERANCE = 1e-9

PROMOTED, FORCED, REFUSED, ALREADY = "promoted", "forced", "refused", "already-champion"


class PromotionError(RuntimeError):
    """The registry or a run lacks what a promotion decision needs (named in the message)."""


@dataclass
class PromotionDecision:
    kind: str
    registered_model: str
    candidate_version: str
    champion_version: str | None  # the champion compared against (before this decision)
    decision: str  # promoted | forced | refused | already-champion
    promoted: bool  # whether `champion` now points at the candidate because of this call
    reason: str
    method: str  # logged | re-evaluated | no-champion | same-version | not-compared
    metrics: list[str] = field(default_factory=list)
    candidate_scores: dict[str, float] = field(default_factory=dict)
    champion_scores: dict[str, float] = field(default_factory=dict)
    dev_fingerprint: str | None = None  # the dev set the figures are from (the candidate's)
    champion_dev_fingerprint: str | None = None

    @property
    def candidate_value(self) -> float | None:
        return self.candidate_scores.get(self.metrics[0]) if self.metrics else None

    @property
    def champion_value(self) -> float | None:
        return self.champion_scores.get(self.metrics[0]) if self.metrics else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidate_value": self.candidate_value, "champion_value": self.champion_value}


@dataclass
class _Comparison:
    method: str
    candidate: dict[str, float]
    champion: dict[str, float]
    candidate_fingerprint: str | None
    champion_fingerprint: str | None


def promote(
    kind: str,
    version: str | int | None = None,
    force: bool = False,
    tracking_uri: str | None = None,
    registered_model: str | None = None,
    device: str = "auto",
) -> PromotionDecision:
    """Decide, move `champion` when the candidate wins (or `force`), tag the version, return the decision."""
    if kind not in KINDS:
        raise PromotionError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    name = registered_model or DEFAULT_REGISTERED_MODELS[kind]
    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    candidate = _candidate(client, name, version)
    champion = _champion(client, name)
    metrics = list(COMPARED_METRICS[kind])

    def decided(decision: str, reason: str, comparison: _Comparison | None, method: str) -> PromotionDecision:
        return PromotionDecision(
            kind,
            name,
            str(candidate.version),
            str(champion.version) if champion else None,
            decision,
            decision in (PROMOTED, FORCED),
            reason,
            method,
            metrics,
            comparison.candidate if comparison else {},
            comparison.champion if comparison else {},
            comparison.candidate_fingerprint if comparison else None,
            comparison.champion_fingerprint if comparison else None,
        )

    if champion is not None and str(champion.version) == str(candidate.version):
        outcome = decided(ALREADY, f"version {candidate.version} is already {CHAMPION}", None, "same-version")
        log.info("promotion model=%s version=%s decision=%s", name, candidate.version, outcome.decision)
        return outcome
    if champion is None:
        outcome = decided(
            PROMOTED, f"no {CHAMPION} yet: version {candidate.version} becomes the first", None, "no-champion"
        )
    else:
        try:
            comparison = compare(client, kind, candidate, champion, device)
        except PromotionError as err:
            if not force:
                raise
            outcome = decided(
                FORCED, f"forced; not compared with version {champion.version}: {err}", None, "not-compared"
            )
        else:
            outcome = _judge(kind, candidate, champion, comparison, force, decided)
    _record(client, outcome, champion)
    log.info(
        "promotion model=%s version=%s champion=%s decision=%s reason=%s",
        name,
        outcome.candidate_version,
        outcome.champion_version,
        outcome.decision,
        outcome.reason,
    )
    return outcome


def _judge(
    kind: str, candidate: ModelVersion, champion: ModelVersion, comparison: _Comparison, force: bool, decided
) -> PromotionDecision:
    where = (
        "logged metrics on the same dev set"
        if comparison.method == "logged"
        else f"re-evaluated on version {candidate.version}'s dev set (dev fingerprints differ: "
        f"{comparison.candidate_fingerprint} vs {comparison.champion_fingerprint})"
    )
    verdict, deciding = "tie", COMPARED_METRICS[kind][0]
    for metric in COMPARED_METRICS[kind]:
        new, old = comparison.candidate[metric], comparison.champion[metric]
        if abs(new - old) > TOLERANCE:
            verdict, deciding = ("better" if new > old else "worse"), metric
            break
    new, old = comparison.candidate[deciding], comparison.champion[deciding]
    figures = f"{deciding} {new:.4f} vs {old:.4f}"
    if verdict == "better":
        return decided(
            PROMOTED,
            f"version {candidate.version} beats {CHAMPION} version {champion.version}: {figures} ({where})",
            comparison,
            comparison.method,
        )
    lost = (
        f"version {candidate.version} does not beat {CHAMPION} version {champion.version}: "
        f"{'tie on ' + ', '.join(COMPARED_METRICS[kind]) + ': ' if verdict == 'tie' else ''}{figures} ({where})"
    )
    if force:
        return decided(FORCED, f"forced; {lost}", comparison, comparison.method)
    return decided(REFUSED, lost, comparison, comparison.method)


def _candidate(client: MlflowClient, name: str, version: str | int | None) -> ModelVersion:
    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        return client.get_model_version_by_alias(name, CANDIDATE)
    except MlflowException as err:
        what = f"version {version}" if version is not None else f"version with alias {CANDIDATE!r}"
        raise PromotionError(
            f"registered model {name!r} has no {what} in {client.tracking_uri}: {err.message}"
        ) from err


def _champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as err:
        raise PromotionError(f"registered model {name!r} not found in {client.tracking_uri}: {err.message}") from err
    if CHAMPION not in aliases:
        return None
    return client.get_model_version_by_alias(name, CHAMPION)


def compare(
    client: MlflowClient, kind: str, candidate: ModelVersion, champion: ModelVersion, device: str = "auto"
) -> _Comparison:
    """Both versions' figures on one dev set: logged ones when the dev fingerprints match, else re-evaluated."""
    candidate_run, champion_run = _run(client, candidate), _run(client, champion)
    candidate_fp = candidate_run.data.params.get(DEV_FINGERPRINT_PARAM)
    champion_fp = champion_run.data.params.get(DEV_FINGERPRINT_PARAM)
    if candidate_fp and candidate_fp == champion_fp:
        logged_candidate = _logged(client, candidate_run, COMPARED_METRICS[kind])
        logged_champion = _logged(client, champion_run, COMPARED_METRICS[kind])
        if logged_candidate is not None and logged_champion is not None:
            return _Comparison("logged", logged_candidate, logged_champion, candidate_fp, champion_fp)
        log.info("a run lacks logged %s: re-evaluating", ", ".join(COMPARED_METRICS[kind]))
    figures = reevaluate(client, kind, candidate_run, [candidate_run, champion_run], device)
    return _Comparison("re-evaluated", figures[0], figures[1], candidate_fp, champion_fp)


def _run(client: MlflowClient, version: ModelVersion) -> Run:
    if not version.run_id:
        raise PromotionError(f"version {version.version} of {version.name!r} has no source run")
    try:
        return client.get_run(version.run_id)
    except MlflowException as err:
        raise PromotionError(f"run {version.run_id} of version {version.version} not found: {err.message}") from err


def _logged(client: MlflowClient, run: Run, metrics: tuple[str, ...]) -> dict[str, float] | None:
    """The value each metric was logged with last. Training logs the per-epoch dev figures under some of the
    same names (at steps 1..n) before the final ones (at step 0), so the run's "latest" value, which MLflow
    picks by step, can be an epoch's: the history, ordered by time, says which came last."""
    values: dict[str, float] = {}
    for metric in metrics:
        if metric not in run.data.metrics:
            return None
        history = client.get_metric_history(run.info.run_id, metric)
        last = max(history, key=lambda m: (m.timestamp, m.step == 0)) if history else None
        value = last.value if last is not None else run.data.metrics[metric]
        if value is None or math.isnan(value):
            return None
        values[metric] = float(value)
    return values


def reevaluate(
    client: MlflowClient, kind: str, dev_run: Run, runs: list[Run], device: str = "auto"
) -> list[dict[str, float]]:
    """Each run's model (its `model_dir/` artifacts) scored on `dev_run`'s dev split, as training scores."""
    from frontwire.modeling import META_FILE, ModelMeta

    with tempfile.TemporaryDirectory(prefix="frontwire-promote-") as tmp:
        model_dirs = []
        for run in runs:
            target = Path(tmp) / run.info.run_id
            target.mkdir()
            try:
                local = client.download_artifacts(run.info.run_id, MODEL_DIR_ARTIFACT, str(target))
            except (MlflowException, OSError) as err:
                local = None
                log.debug("download failed run=%s: %s", run.info.run_id, err)
            if local is None or not (Path(local) / META_FILE).is_file():
                raise PromotionError(
                    f"run {run.info.run_id} has no {MODEL_DIR_ARTIFACT}/ artifacts (a frontwire "
                    "model dir) to re-evaluate"
                )
            model_dirs.append(Path(local))
        metas = [ModelMeta.load(d) for d in model_dirs]
        if {m.kind for m in metas} != {kind}:
            raise PromotionError(f"expected {kind} models, found {[m.kind for m in metas]}")
        if len({m.schema_.tag for m in metas}) > 1:
            raise PromotionError(
                f"label schemas differ ({', '.join(m.schema_.tag for m in metas)}): the figures would not be comparable"
            )
        dev = dev_records(dev_run, metas[0].schema_)
        return [_score(kind, model_dir, dev, device) for model_dir in model_dirs]


def dev_records(run: Run, schema) -> list:
    """The run's dev split, rebuilt from its records source and checked against its logged fingerprint."""
    from frontwire.records import fingerprint
    from frontwire.train.data import load_split_data

    params, tags = run.data.params, run.data.tags
    source, expected = tags.get(SOURCE_TAG), params.get(DEV_FINGERPRINT_PARAM)
    if not source or not Path(source).exists():
        raise PromotionError(
            f"run {run.info.run_id}: records source {source!r} (tag {SOURCE_TAG}) is not on this "
            "machine: cannot rebuild its dev set"
        )
    dev = load_split_data(source, schema).dev
    size = params.get(DEV_SIZE_PARAM)
    if size is not None and size.isdigit():  # a run trained with data.limit used the first `size` dev records
        dev = dev[: int(size)]
    if expected and fingerprint(dev) != expected:
        raise PromotionError(
            f"run {run.info.run_id}: the dev split rebuilt from {source} has fingerprint "
            f"{fingerprint(dev)}, the run logged {expected}: the records changed since"
        )
    if not dev:
        raise PromotionError(f"run {run.info.run_id}: empty dev split in {source}")
    return dev


def _score(kind: str, model_dir: Path, dev: list, device: str) -> dict[str, float]:
    from frontwire.train.run_steps import flat_metrics

    if kind == "classifier":
        from frontwire.metrics import topic_metrics
        from frontwire.predictor import TopicModel
        from frontwire.train.classifier import decoded, score_records

        model = TopicModel.load(model_dir, device)
        y_true, scores = score_records(model, dev)
        block = topic_metrics(y_true, decoded(model, scores, model.thresholds), model.meta.labels)
    else:
        from frontwire.metrics import entity_metrics
        from frontwire.predictor import EntityModel
        from frontwire.train.ner import gold_spans, predicted_spans

        model = EntityModel.load(model_dir, device)
        block = entity_metrics([r.text for r in dev], gold_spans(dev), predicted_spans(model, dev))
    flat = flat_metrics({"dev": block})
    return {metric: flat[metric] for metric in COMPARED_METRICS[kind]}


def _record(client: MlflowClient, outcome: PromotionDecision, champion: ModelVersion | None) -> None:
    """Move the alias when promoted; tag the candidate (and a replaced champion) with the decision."""
    name, version = outcome.registered_model, outcome.candidate_version
    if outcome.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    tags = {
        "decision": outcome.decision,
        "reason": outcome.reason,
        "method": outcome.method,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "champion_version": outcome.champion_version or "",
        "metric": outcome.metrics[0] if outcome.metrics else "",
        "candidate_value": "" if outcome.candidate_value is None else f"{outcome.candidate_value:.6f}",
        "champion_value": "" if outcome.champion_value is None else f"{outcome.champion_value:.6f}",
        "dev_fingerprint": outcome.dev_fingerprint or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, f"{TAG_PREFIX}{key}", value)
    if outcome.promoted and champion is not None:
        client.set_model_version_tag(name, str(champion.version), f"{TAG_PREFIX}replaced_by", version)
