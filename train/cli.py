"""`frontwire train …` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Fine-tune the topic classifier or the NER model; tracked in MLflow.", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Training config YAML (default: packaged).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set training.epochs=2")]
DataOpt = Annotated[str | None, typer.Option("--data", help="Records folder or Label Studio export (= data.source).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in output.dir.")]


def _overrides(set_: list[str] | None, data: str | None) -> tuple[str, ...]:
    return (*(set_ or ()), *((f"data.source={data}",) if data else ()))


SchemaOpt = Annotated[Path | None, typer.Option(help="Label schema YAML.")]


def _train(kind: str, config: Path | None, overrides: tuple[str, ...], resume: bool, schema: Path | None) -> None:
    """Load and check the config, train, and print where the model and the run are, with the dev figures."""
    from frontwire.schema import load_schema
    from frontwire.train.classifier import train_classifier
    from frontwire.train.ner import train_ner
    from frontwire.train.settings import load_classifier_config, load_ner_config

    load, train = (load_classifier_config, train_classifier) if kind == "classifier" else (load_ner_config, train_ner)
    cfg = load(config, overrides)
    if resume and not cfg.output.dir:
        raise typer.BadParameter("--resume needs the run's folder: --set output.dir=runs/models/<name>")
    outcome = train(cfg, load_schema(schema), resume=resume)
    dev = outcome.metrics["dev"]
    figures = (
        {"dev_micro_f1": round(dev["micro"]["f1"], 4), "dev_macro_f1": round(dev["macro"]["f1"], 4),
         "dev_per_label_f1": {k: round(v["f1"], 4) for k, v in dev["per_label"].items()}}
        if kind == "classifier"
        else {"dev_entity_f1": round(dev["micro"]["f1"], 4),
              "dev_per_type_f1": {k: round(v["f1"], 4) for k, v in dev["per_type"].items()}}
    )
    summary = {"model_dir": str(outcome.model_dir), "run_id": outcome.run_id, "registered_version": outcome.version,
               "tracking_uri": outcome.tracking_uri, **figures}
    typer.echo(json.dumps(summary, indent=1))


@app.command("classifier")
def classifier_cmd(
    config: ConfigOpt = None, set_: SetOpt = None, data: DataOpt = None, resume: ResumeOpt = False,
    schema: SchemaOpt = None,
) -> None:
    """Train the multi-label topic classifier (plus the TF-IDF baseline) and register it as `candidate`.

    Example: frontwire train classifier --data runs/data --set training.epochs=3
    """
    _train("classifier", config, _overrides(set_, data), resume, schema)


@app.command("ner")
def ner_cmd(
    config: ConfigOpt = None, set_: SetOpt = None, data: DataOpt = None, resume: ResumeOpt = False,
    schema: SchemaOpt = None,
) -> None:
    """Train the NER model (BIO tags from character spans) and register it as `candidate`.

    Example: frontwire train ner --data runs/data --set training.epochs=3
    """
    _train("ner", config, _overrides(set_, data), resume, schema)


def run_cmd(
    export: Annotated[
        Path | None, typer.Argument(help="Label Studio export (default: the shared export, else data/ sample).")
    ] = None,
    classifier_set: Annotated[
        list[str] | None, typer.Option("--classifier-set", help="Classifier config override.")
    ] = None,
    ner_set: Annotated[list[str] | None, typer.Option("--ner-set", help="NER config override.")] = None,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Register as candidate only.")] = False,
) -> None:
    """The main job: import annotations, train classifier and NER, register and promote, print where things are.

    Example: frontwire run            (shared export if ../shared exists, else the sample in data/)
    """
    from frontwire.train.pipeline import run_pipeline

    summary = run_pipeline(export, tuple(classifier_set or ()), tuple(ner_set or ()), promote=not no_promote)
    typer.echo(json.dumps(summary, indent=1, default=str))
    typer.echo(
        f"\nModels: {summary['classifier']['model_dir']}\n        {summary['ner']['model_dir']}\n"
        f"MLflow: {summary['tracking_uri']}  (mlflow ui --backend-store-uri {summary['tracking_uri']})"
    )


@app.command("domain-adapt")
def domain_adapt_cmd(
    archives: Annotated[
        list[Path] | None,
        typer.Argument(help="Unlabeled JSONL(.gz) articles, .txt or .html files (default: the shared archive)."),
    ] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data: Annotated[str | None, typer.Option("--data", help="Records folder whose dev/test are left out.")] = None,
) -> None:
    """Continue masked-LM pretraining of the encoder on unlabeled news (configs/domain.yaml); dev/test
    paragraphs are left out. Then fine-tune from it with --set model.base_model=<its folder>.

    Example: frontwire train domain-adapt --set training.epochs=3
    """
    from frontwire.paths import shared_archives, work_dir
    from frontwire.schema import load_schema
    from frontwire.train.data import load_split_data
    from frontwire.train.domain import archive_paragraphs, domain_adapt, load_domain_config
    from frontwire.train.tracking import log_domain_run

    overrides = (*(set_ or ()), *((f"data.records={data}",) if data else ()))
    if archives:
        overrides += (f"data.archives={json.dumps([str(p) for p in archives])}",)
    cfg = load_domain_config(config, overrides)
    paths = [Path(p) for p in cfg.data.archives] or shared_archives()
    if not paths:
        raise typer.BadParameter("no archive given and ../shared/data/archive_articles.jsonl.gz is not there")
    split = load_split_data(cfg.data.records, load_schema())
    held = [r.text for r in (*split.dev, *split.test)]
    paragraphs = archive_paragraphs(paths, exclude_texts=held)
    target = Path(cfg.output.dir) if cfg.output.dir else work_dir() / "models" / "encoder-domain"
    metrics = domain_adapt(paragraphs, cfg.model.base_model, target, cfg.training)
    run_id = log_domain_run(cfg, [str(p) for p in paths], metrics, target)
    typer.echo(json.dumps({"model_dir": str(target), "run_id": run_id, **metrics,
                           "excluded_dev_test_paragraphs": len(held)}, indent=1))


@app.command("benchmark")
def benchmark_cmd(
    name: Annotated[str, typer.Argument(help="conll2003 | reuters | wnut17 (files under ../shared/benchmarks).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Cap per split (smoke runs).")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Results JSON, merged per benchmark (default: runs/benchmarks/results.json)."),
    ] = None,
) -> None:
    """Validate the trainers on a public benchmark: train, early-stop on dev, report test figures vs. anchors.

    Logged to MLflow experiment `frontwire-benchmarks`, never registered. Not part of CI (hours on 2 cores).
    Example: frontwire train benchmark conll2003 --limit 30 --set training.max_steps=2
    """
    from frontwire.train.benchmark_data import BENCHMARKS, BenchmarkDataMissing
    from frontwire.train.benchmarks import run_benchmark

    if name not in BENCHMARKS:
        raise typer.BadParameter(
            f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}", param_hint="NAME"
        )
    try:
        result = run_benchmark(name, tuple(set_ or ()), limit, out, config)
    except BenchmarkDataMissing as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(
        json.dumps(
            {
                "benchmark": name,
                **result["headline"],
                "anchors": result["anchors"],
                "skipped_lines": result["dataset"]["skipped_lines"],
                "seconds": result["seconds"],
                "run_id": result["run_id"],
                "results_file": result["results_file"],
            },
            indent=1,
        )
    )


def promote_cmd(
    kind: Annotated[str, typer.Argument(help="classifier | ner")],
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="Registered version to promote (default: the one with alias candidate)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even when it does not beat the champion.")] = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow store (default: the training config's, else $MLFLOW_TRACKING_URI, else runs/mlflow.db).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Registered model (default: the training config's mlflow.registered_model)."),
    ] = None,
) -> None:
    """Move alias `champion` to the candidate only if it beats the champion on the same dev set (or --force).

    Same dev fingerprint: the logged dev metrics decide (classifier macro-F1, then micro-F1; NER entity F1).

    Different dev sets: both models are re-evaluated on the candidate's dev split.

    Prints the decision, its reason and both figures as JSON (also tagged `promotion.*` on the version);
    exit code 1 when refused, 2 when the registry lacks what the decision needs.

    Example: frontwire promote classifier
    """
    from frontwire.train.registry import KINDS, PromotionError, promote

    if kind not in KINDS:
        raise typer.BadParameter(f"expected one of {', '.join(KINDS)}", param_hint="KIND")
    try:
        decision = promote(kind, version, force, tracking_uri, name)
    except PromotionError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(json.dumps(decision.as_dict(), indent=1))
    if decision.decision == "refused":
        raise typer.Exit(1)
