"""`frontwire retrain`: the latest annotations in, a better champion out (or a reasoned refusal).

pull      the project's full export from a live Label Studio (`--url --project`) or an export file
validate  `frontwire.labeling.importer.import_tasks`: records + error report into the stable records folder;
          groups (articles) already in its splits.json keep their split, new ones are assigned
train     classifier and NER (packaged configs; `--classifier-set` / `--ner-set` override keys), each
          registered as a new version with alias `candidate`
evaluate  the new candidate and the current champion on the FIXED test split, with the predictor and metrics
          every stage uses, 95 % paragraph-bootstrap intervals and a paired interval of the difference
          (frontwire.evaluate.paired)
promote   `frontwire.train.registry.promote`: `champion` moves only when the candidate beats it on dev (the
          project's one promotion rule; the test split is reported, never selected on)
summary   one screen: data added since the last import, test metrics before/after, decisions; the same as
          JSON in the records folder's retrain/ history and in each candidate run.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from frontwire.train.retrain_report import KINDS, data_delta, disagreement, headline, render_summary

log = logging.getLogger(__name__)


def _champion(kind: str, name: str, tracking_uri: str) -> tuple[str, Path] | None:
    """The current champion's label and model dir (registry versions are cached once, as for serving)."""
    from frontwire.model_sources import ModelSourceError, resolve_model

    try:
        ref = resolve_model(f"models:/{name}@champion", kind, name, tracking_uri=tracking_uri)
    except ModelSourceError as err:
        log.info("retrain_no_champion name=%s (%s)", name, err)
        return None
    return f"{name} v{ref.version} (champion)", ref.model_dir


# ---------------------------------------------------------------------------------------------------- retrain
def pull_tasks(export: Path | None = None, url: str | None = None, project: int | None = None) -> tuple[list[Any], str]:
    from frontwire.labeling.importer import read_export_file

    if project is not None:
        from frontwire.labeling.client import connect, export_tasks

        return export_tasks(connect(url), project), f"label-studio project {project}"
    if export is None:
        raise ValueError("retrain needs annotations: --url/--project for a live project, or --export FILE")
    return read_export_file(export), str(export)


def retrain(
    tasks: list[Any],
    source: str,
    data_dir: Path | None = None,
    classifier_overrides: tuple[str, ...] = (),
    ner_overrides: tuple[str, ...] = (),
    tracking_uri: str | None = None,
    limit: int | None = None,
    promote: bool = True,
    only_if_new: bool = False,
    n_resamples: int = 1000,
    seed: int = 13,
    device: str = "auto",
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, Any]:

    import mlflow

    from frontwire.labeling.importer import RECORDS_FILE, SPLITS_FILE, import_tasks
    from frontwire.labeling.settings import load_labeling_config
    from frontwire.paths import default_data_dir, default_tracking_uri
    from frontwire.records import read_records
    from frontwire.schema import load_schema
    from frontwire.splits import load_assignment
    from frontwire.train.data import load_split_data
    from frontwire.train.settings import load_classifier_config, load_ner_config

    started = datetime.now(UTC)
    schema = load_schema()
    labeling = load_labeling_config()
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    previous = read_records(data_dir / RECORDS_FILE) if (data_dir / RECORDS_FILE).is_file() else []
    previous_groups = load_assignment(data_dir / SPLITS_FILE)

    imported = import_tasks(tasks, data_dir, schema, labeling, source)
    if not imported.result.records:
        raise ValueError(f"{source}: no valid annotated record (see {data_dir / 'import_report.jsonl'})")
    assignment = load_assignment(data_dir / SPLITS_FILE)
    delta = data_delta(previous, imported.result.records, previous_groups, assignment, labeling.split.group_by)
    summary: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "data": {
            "source": source,
            "records_dir": str(data_dir),
            **{k: imported.summary[k] for k in ("tasks", "records", "errors", "fingerprint")},
            "errors_by_reason": imported.summary.get("errors_by_reason", {}),
            "splits": {k: v["records"] for k, v in imported.summary["splits"].items()},
            **delta,
        },
    }
    if only_if_new and previous and not (delta["added"] or delta["removed"] or delta["relabelled"]):
        summary["skipped"] = "no annotation added, removed or changed since the last import"
        return summary

    extra = (f"mlflow.tracking_uri={tracking_uri}",) if tracking_uri else ()
    extra_limit = (f"data.limit={limit}",) if limit else ()
    configs = {
        "classifier": load_classifier_config(None, (*extra_limit, *classifier_overrides, *extra)),
        "ner": load_ner_config(None, (*extra_limit, *ner_overrides, *extra)),
    }
    test = load_split_data(data_dir, schema, limit).test
    summary["test"] = {"paragraphs": len(test), "note": "groups keep their split across imports: fixed test set"}

    from frontwire.evaluate.paired import compare_on_test

    for kind in kinds:
        config = configs[kind]
        uri = config.mlflow.tracking_uri or default_tracking_uri()
        name = config.mlflow.registered_model
        champion = _champion(kind, name, uri)  # before training: the champion being replaced
        data = load_split_data(data_dir, schema, config.data.limit)
        outcome = _train(kind, config, schema, data)
        label = f"{name} v{outcome.version} (candidate)" if outcome.version else f"{outcome.model_dir.name}"
        comparison = compare_on_test(kind, (label, outcome.model_dir), champion, test, n_resamples, seed, device=device)
        entry: dict[str, Any] = {
            "registered_model": name,
            "version": outcome.version,
            "run_id": outcome.run_id,
            "model_dir": str(outcome.model_dir),
            "tracking_uri": outcome.tracking_uri,
            "dev": headline(kind, outcome.metrics.get("dev", {})),
            "test_comparison": comparison,
        }
        if outcome.version is None:
            entry["decision"] = {
                "decision": "not-registered",
                "promoted": False,
                "reason": "mlflow.register=false: nothing to promote",
            }
        elif promote:
            from frontwire.train.registry import promote as promote_version

            decision = promote_version(
                kind,
                version=outcome.version,
                tracking_uri=outcome.tracking_uri,
                registered_model=name,
                device=device,
            )
            entry["decision"] = decision.as_dict()
        else:
            entry["decision"] = {
                "decision": "not-asked",
                "promoted": False,
                "reason": "--no-promote: registered as candidate only",
            }
        entry["warning"] = disagreement(kind, entry)
        mlflow.set_tracking_uri(outcome.tracking_uri)
        with mlflow.start_run(run_id=outcome.run_id):
            mlflow.log_dict({"data": summary["data"], kind: entry}, "retrain/summary.json")
        summary[kind] = entry
    summary["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    history = data_dir / "retrain"
    history.mkdir(parents=True, exist_ok=True)
    (history / f"{started:%Y%m%d-%H%M%S}.json").write_text(
        json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8"
    )
    return summary


def _train(kind: str, config, schema, data):
    if kind == "classifier":
        from frontwire.train.classifier import train_classifier

        return train_classifier(config, schema, data)
    from frontwire.train.ner import train_ner

    return train_ner(config, schema, data)


# ---------------------------------------------------------------------------------------------------- command
def retrain_cmd(
    export: Annotated[
        Path | None,
        typer.Option("--export", help="A Label Studio JSON export file to retrain from (instead of a live project)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Label Studio URL (or $LABEL_STUDIO_URL); token: $LABEL_STUDIO_API_KEY.")
    ] = None,
    project: Annotated[int | None, typer.Option(help="Label Studio project id to pull.")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="The stable records folder (default: <work dir>/data, as `labeling import`)."),
    ] = None,
    classifier_set: Annotated[
        list[str] | None, typer.Option("--classifier-set", help="Classifier config override, e.g. training.epochs=3.")
    ] = None,
    ner_set: Annotated[list[str] | None, typer.Option("--ner-set", help="NER config override.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Cap records per split (smoke runs).")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow store (default: the configs', else $MLFLOW_TRACKING_URI, else the work dir's)."),
    ] = None,
    only: Annotated[str | None, typer.Option(help="Retrain one model only: classifier | ner.")] = None,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Register as candidate only.")] = False,
    only_if_new: Annotated[
        bool, typer.Option("--only-if-new", help="Skip training when no annotation changed since the last import.")
    ] = False,
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap resamples for the test intervals.")] = 1000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead.")] = False,
) -> None:
    """Pull the latest annotations, retrain both models, compare with the champion on the fixed test split,
    register the candidates and promote each one only if it beats its champion.

    Examples:

    frontwire retrain --url http://127.0.0.1:8080 --project 3

    frontwire retrain --export ../shared/data/labelstudio_export.json --classifier-set training.epochs=3
    """
    if project is None and url is not None:
        raise typer.BadParameter("--project is required with --url")
    if project is not None and export is not None:
        raise typer.BadParameter("pull from a live project (--project) or a file (--export), not both")
    if only is not None and only not in KINDS:
        raise typer.BadParameter(f"--only takes one of {', '.join(KINDS)}")
    try:
        tasks, source = pull_tasks(export, url, project)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    summary = retrain(
        tasks,
        source,
        data_dir,
        tuple(classifier_set or ()),
        tuple(ner_set or ()),
        tracking_uri,
        limit,
        promote=not no_promote,
        only_if_new=only_if_new,
        n_resamples=bootstrap,
        device=device,
        kinds=(only,) if only else KINDS,
    )
    typer.echo(json.dumps(summary, indent=1, default=str) if json_out else render_summary(summary))
