"""`frontwire labeling …` commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import default_data_dir, default_export
from frontwire.schema import load_schema

if TYPE_CHECKING:
    from frontwire.labeling.review_suspects import Suspect
    from frontwire.labeling.settings import LabelingConfig
    from frontwire.records import Record
    from frontwire.schema import LabelSchema

app = typer.Typer(help="Label Studio: labeling config, import of exports, push of new tasks.", no_args_is_help=True)

SchemaOpt = Annotated[
    Path | None, typer.Option("--schema", help="Label schema YAML (default: packaged configs/labels.yaml).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Labeling config YAML (default: configs/labeling.yaml).")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set annotation_policy=latest.")
]


@app.command("config")
def config_cmd(
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the XML here instead of stdout.")] = None,
) -> None:
    """Print the Label Studio labeling config generated from the label schema.

    Example: frontwire labeling config > labeling.xml
    """
    from frontwire.labeling.ls_config import label_studio_config

    xml = label_studio_config(load_schema(schema), load_labeling_config(config))
    if out:
        out.write_text(xml + "\n", encoding="utf-8")
    else:
        typer.echo(xml)


@app.command("import")
def import_cmd(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A Label Studio JSON export file; omit with --url/--project to pull a live project. "
            "Default: the shared export, else the sample in data/."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder for records.jsonl, import_report.jsonl, splits.json."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Label Studio URL (or $LABEL_STUDIO_URL) to pull a live project.")
    ] = None,
    project: Annotated[int | None, typer.Option(help="Label Studio project id to pull.")] = None,
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Turn a Label Studio export into validated records, an error report and stable splits.

    Every task ends up as a record or as a row of import_report.jsonl naming its task id and the reason.
    Token for a live server: $LABEL_STUDIO_API_KEY.

    Examples:
      frontwire labeling import ../shared/data/labelstudio_export.json --out runs/data
      frontwire labeling import --url http://127.0.0.1:8080 --project 3 --out runs/data
    """
    from frontwire.labeling.importer import ExportFileError, import_tasks, read_export_file

    labeling_config = load_labeling_config(config, tuple(set_ or ()))
    label_schema = load_schema(schema)
    out = out or default_data_dir()
    if project is not None or url is not None:
        if project is None:
            raise typer.BadParameter("--project is required with --url")
        from frontwire.labeling.client import connect, export_tasks

        tasks = export_tasks(connect(url), project)
        source_name = f"label-studio project {project}"
    else:
        path = Path(source) if source else default_export()
        try:
            tasks = read_export_file(path)
        except ExportFileError as err:  # the file, not a task: nothing to report row by row
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        source_name = str(path)
    outcome = import_tasks(tasks, out, label_schema, labeling_config, source_name)
    summary = outcome.summary
    typer.echo(
        f"{summary['tasks']} tasks -> {summary['records']} records, {summary['errors']} errors "
        f"{json.dumps(summary['errors_by_reason'])}, repairs {json.dumps(summary['repairs_by_reason'])}; "
        f"splits "
        + ", ".join(f"{k} {v['records']}" for k, v in summary["splits"].items())
        + f"; fingerprint {summary['fingerprint']} -> {out}"
    )


@app.command("push")
def push_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Article files: .txt, .html(.gz), .jsonl(.gz) with id/text.")],
    project_title: Annotated[
        str, typer.Option("--project-title", help="Project to create or reuse.")
    ] = "frontwire war-news paragraphs",
    url: Annotated[str | None, typer.Option(help="Label Studio URL (or $LABEL_STUDIO_URL).")] = None,
    predictions: Annotated[
        Path | None, typer.Option(help="JSONL of pre-annotations: paragraph_id, model_version, score, result.")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Tasks per import request.")] = 500,
    text_field: Annotated[str, typer.Option(help="Text field of JSONL inputs.")] = "text",
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Split articles into paragraph tasks and import them into a Label Studio project.

    Idempotent: paragraphs already in the project (same content hash) are not imported again.

    Example: frontwire labeling push ../shared/data/archive_articles.jsonl.gz --url http://127.0.0.1:8080
    """
    from frontwire.documents import DocumentError, read_documents
    from frontwire.labeling.client import connect
    from frontwire.labeling.push import load_predictions, paragraph_tasks, push_tasks

    labeling_config = load_labeling_config(config)
    errors: list[DocumentError] = []
    documents = [doc for path in inputs for doc in read_documents(path, text_field, errors)]
    for error in errors:
        typer.echo(f"skipped: {error}", err=True)
    tasks = paragraph_tasks(documents, labeling_config)
    outcome = push_tasks(
        connect(url),
        tasks,
        load_schema(schema),
        labeling_config,
        project_title,
        load_predictions(predictions) if predictions else None,
        chunk_size,
    )
    typer.echo(
        f"project {outcome.project_id}{' (created)' if outcome.created_project else ''}: "
        f"{len(documents)} documents, {outcome.paragraphs} paragraphs, {outcome.imported} imported, "
        f"{outcome.already_there} already there, {outcome.duplicates_in_input} duplicates in input, "
        f"{len(errors)} unreadable records"
    )


@app.command("suggest")
def suggest_cmd(
    inputs: Annotated[
        list[Path], typer.Argument(help="Unlabeled articles: .txt, .html(.gz), .jsonl(.gz) with id/text.")
    ],
    top: Annotated[
        int, typer.Option("--top", min=1, help="How many of the most informative paragraphs to queue.")
    ] = 200,
    project_title: Annotated[
        str, typer.Option("--project-title", help="Project to create or reuse.")
    ] = "frontwire war-news paragraphs",
    url: Annotated[
        str | None, typer.Option(help="Label Studio URL (or $LABEL_STUDIO_URL); token: $LABEL_STUDIO_API_KEY.")
    ] = None,
    classifier: Annotated[
        str | None,
        typer.Option(help="Classifier: model dir or models:/… URI (default: the registry's champion, else newest)."),
    ] = None,
    ner: Annotated[
        str | None,
        typer.Option(help="NER model: model dir or models:/… URI (default: the registry's champion, else newest)."),
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store holding the registered models.")] = None,
    ner_weight: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the NER token-margin uncertainty in the score.")
    ] = 0.3,
    max_candidates: Annotated[
        int | None, typer.Option(min=1, help="Score at most this many paragraphs (a seeded random sample).")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Tasks per import request.")] = 500,
    batch_size: Annotated[int, typer.Option(min=1, help="Inference batch size.")] = 32,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    out: Annotated[Path | None, typer.Option(help="Also write the ranked suggestions as JSONL here.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Rank only; push nothing (and need no server without --url).")
    ] = False,
    text_field: Annotated[str, typer.Option(help="Text field of JSONL inputs.")] = "text",
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue the paragraphs the models are least sure about, with their predictions as pre-annotations.

    Near-duplicates (syndicated copies, Jaccard ≥ 0.8 on word 3-shingles) and paragraphs already annotated in
    the project are skipped; the top N go in bulk with `model_version` and scores. Idempotent: the same run
    again imports nothing.

    Example: frontwire labeling suggest ../shared/data/archive_articles.jsonl.gz --top 200 --url URL
    """
    from frontwire.documents import DocumentError, read_documents
    from frontwire.labeling.scoring import load_models
    from frontwire.labeling.suggest import suggest, write_suggestions

    labeling_config = load_labeling_config(config)
    errors: list[DocumentError] = []
    documents = [doc for path in inputs for doc in read_documents(path, text_field, errors)]
    for error in errors:
        typer.echo(f"skipped: {error}", err=True)
    client = None
    if not dry_run or url is not None:
        from frontwire.labeling.client import connect

        client = connect(url)
    try:
        models = load_models(classifier, ner, tracking_uri=tracking_uri, device=device)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    outcome = suggest(
        documents,
        labeling_config,
        load_schema(schema),
        models,
        top,
        client,
        project_title,
        chunk_size,
        batch_size,
        ner_weight,
        max_candidates,
        dry_run=dry_run,
    )
    if out:
        write_suggestions(out, outcome.selected)
    summary = outcome.as_dict()
    typer.echo(
        f"{summary['documents']} documents, {summary['paragraphs']} paragraphs, "
        f"{summary['unique_paragraphs']} unique; {summary['already_annotated']} already annotated, "
        f"{summary['near_duplicates_of_annotated']} near-duplicates of annotated tasks, "
        f"{summary['near_duplicates_dropped']} near-duplicates dropped; "
        f"{summary['scored']} scored by {summary['model_version']}"
    )
    if summary["informativeness"]:
        typer.echo(
            f"top {summary['selected']}: informativeness {summary['informativeness']['max']:.3f} .. "
            f"{summary['informativeness']['min']:.3f}"
        )
    if outcome.push is not None:
        typer.echo(
            f"project {summary['project_id']}{' (created)' if outcome.push.created_project else ''}: "
            f"{summary['imported']} imported with predictions, {summary['already_in_project']} "
            "already there"
        )
    elif dry_run:
        typer.echo("dry run: nothing pushed")


@app.command("review")
def review_cmd(
    records_dir: Annotated[
        Path | None, typer.Argument(help="Folder with the records.jsonl an import wrote (default: runs/data).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where review.jsonl and review.html go.")] = None,
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help="Add the suspects to the Label Studio project as a review queue: one prediction per task "
            "carrying the suggested annotation, and a saved tab; annotations are not touched.",
        ),
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="Label Studio URL (or $LABEL_STUDIO_URL); token: $LABEL_STUDIO_API_KEY.")
    ] = None,
    project: Annotated[
        int | None, typer.Option(help="Label Studio project id the records were exported from (with --push).")
    ] = None,
    schema: SchemaOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Rank the annotations the out-of-fold models doubt: topic labels and entity spans.

    Examples:
      frontwire labeling review runs/data --out runs/review --set review.folds=5
      frontwire labeling review runs/data --push --url http://127.0.0.1:8080 --project 3
    """
    from frontwire.labeling.review import review_records
    from frontwire.labeling.review_report import write_review_page
    from frontwire.labeling.review_suspects import write_suspects
    from frontwire.records import RecordFileError, read_records

    labeling_config = load_labeling_config(config, tuple(set_ or ()))
    label_schema = load_schema(schema)
    if push and project is None:
        raise typer.BadParameter("--push needs --project (the project the records were exported from)")
    records_dir = records_dir or default_data_dir()
    out = out or records_dir
    try:
        records = read_records(records_dir / "records.jsonl", label_schema)
        outcome = review_records(records, label_schema, labeling_config.review)
    except (OSError, RecordFileError, ValueError) as err:
        raise typer.BadParameter(str(err)) from err
    write_suspects(out / "review.jsonl", outcome.suspects)
    summary = {
        "records": outcome.records,
        "folds": outcome.folds,
        "topic_suspects": sum(s.kind == "topic" for s in outcome.suspects),
        "entity_suspects": sum(s.kind == "entity" for s in outcome.suspects),
        "seconds": outcome.seconds,
    }
    write_review_page(out / "review.html", outcome.suspects, summary)
    typer.echo(
        f"{summary['records']} records, {summary['folds']} folds: {summary['topic_suspects']} topic and "
        f"{summary['entity_suspects']} entity suspects -> {out / 'review.jsonl'}, {out / 'review.html'}"
    )
    if push:
        assert project is not None
        _push_review(url, project, records, outcome.suspects, label_schema, labeling_config)


def _push_review(
    url: str | None,
    project: int,
    records: Sequence[Record],
    suspects: Sequence[Suspect],
    label_schema: LabelSchema,
    labeling_config: LabelingConfig,
) -> None:
    """The review's --push: errors (suspects that could not be pushed) one line each, then the summary."""
    from label_studio_sdk.core.api_error import ApiError

    from frontwire.labeling.client import LabelStudioError, connect
    from frontwire.labeling.review_push import push_review

    try:
        pushed = push_review(connect(url), project, records, suspects, label_schema, labeling_config)
    except (LabelStudioError, ApiError) as err:
        typer.echo(f"error: review push to project {project}: {err}", err=True)
        raise typer.Exit(2) from err
    for error in pushed.errors:
        typer.echo(f"error: {error}", err=True)
    view = "no view"
    if pushed.view_id is not None:
        view = f"view {pushed.view_id} '{labeling_config.review.view_title}'"
        view += " (created)" if pushed.view_created else ""
    typer.echo(
        f"project {pushed.project_id}: {pushed.tasks} tasks with suspects, {pushed.created} predictions added "
        f"({pushed.model_version}), {pushed.already_there} already there; {view}; "
        f"{sum(e.suspects for e in pushed.errors)} suspects of {len(pushed.errors)} records not pushed"
    )
    if pushed.errors and not pushed.tasks:
        typer.echo(f"error: no suspect's task is in project {project}: is --project the export's?", err=True)
        raise typer.Exit(1)
