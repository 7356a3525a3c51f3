"""The figures `frontwire promote` compares: both versions' dev metrics on one dev set.

When both runs logged the same dev fingerprint (run param `data.dev_fingerprint`), their logged final dev
metrics are used. Otherwise both models are re-evaluated on the candidate's dev split: records rebuilt from
the candidate run's tag `dataset.source` and checked against its fingerprint, model dirs from the runs'
`model_dir/` artifacts, scored with the predictor and metrics that training uses.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from frontwire.model_sources import MODEL_DIR_ARTIFACT
from frontwire.train.tracking import SOURCE_TAG

log = logging.getLogger(__name__)

#: compared in order: the first differs decides, later ones break ties
COMPARED_METRICS = {"classifier": ("dev_macro_f1", "dev_micro_f1"), "ner": ("dev_micro_f1",)}
DEV_FINGERPRINT_PARAM = "data.dev_fingerprint"
DEV_SIZE_PARAM = "data.dev_size"


class PromotionError(RuntimeError):
    """The registry or a run lacks what a promotion decision needs (named in the message)."""


@dataclass
class Comparison:
    method: str
    candidate: dict[str, float]
    champion: dict[str, float]
    candidate_fingerprint: str | None
    champion_fingerprint: str | None


def compare(
    client: MlflowClient, kind: str, candidate: ModelVersion, champion: ModelVersion, device: str = "auto"
) -> Comparison:
    """Both versions' figures on one dev set: logged ones when the dev fingerprints match, else re-evaluated."""
    candidate_run, champion_run = _run(client, candidate), _run(client, champion)
    candidate_fp = candidate_run.data.params.get(DEV_FINGERPRINT_PARAM)
    champion_fp = champion_run.data.params.get(DEV_FINGERPRINT_PARAM)
    if candidate_fp and candidate_fp == champion_fp:
        logged_candidate = _logged(client, candidate_run, COMPARED_METRICS[kind])
        logged_champion = _logged(client, champion_run, COMPARED_METRICS[kind])
        if logged_candidate is not None and logged_champion is not None:
            return Comparison("logged", logged_candidate, logged_champion, candidate_fp, champion_fp)
        log.info("a run lacks logged %s: re-evaluating", ", ".join(COMPARED_METRICS[kind]))
    figures = reevaluate(client, kind, candidate_run, [candidate_run, champion_run], device)
    return Comparison("re-evaluated", figures[0], figures[1], candidate_fp, champion_fp)


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
