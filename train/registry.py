"""`frontwire promote`: move alias `champion` to a registered version only when it beats the champion on the
same dev set.

Every training run registers a version with alias `candidate` (frontwire.train.tracking.register). Promotion
compares that version (or `--version N`) with the current `champion`:

- both runs' dev metrics on one dev set (frontwire.train.dev_figures: logged when the dev fingerprints match,
  else re-evaluated) are compared (classifier: `dev_macro_f1`, ties broken by `dev_micro_f1`; NER:
  `dev_micro_f1`);
- no champion yet: the candidate is promoted; `--force` promotes whatever the comparison says.

The decision, its reason and both figures are returned, and recorded as `promotion.*` tags on the version.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from frontwire.paths import default_tracking_uri
from frontwire.train.dev_figures import COMPARED_METRICS, Comparison, PromotionError, compare
from frontwire.train.tracking import CANDIDATE, CHAMPION

log = logging.getLogger(__name__)

KINDS = ("classifier", "ner")
TAG_PREFIX = "promotion."
TOLERANCE = 1e-9

PROMOTED, FORCED, REFUSED, ALREADY = "promoted", "forced", "refused", "already-champion"


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
    configured = _configured_mlflow(kind)
    name = registered_model or configured.registered_model
    uri = tracking_uri or configured.tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    candidate = _candidate(client, name, version)
    champion = _champion(client, name)
    metrics = list(COMPARED_METRICS[kind])

    def decided(decision: str, reason: str, comparison: Comparison | None, method: str) -> PromotionDecision:
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


def _configured_mlflow(kind: str):
    """The `mlflow` section of the packaged training config: where `frontwire train` registered the model."""
    from frontwire.train.settings import load_classifier_config, load_ner_config

    return (load_classifier_config() if kind == "classifier" else load_ner_config()).mlflow


def _judge(
    kind: str, candidate: ModelVersion, champion: ModelVersion, comparison: Comparison, force: bool, decided
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
