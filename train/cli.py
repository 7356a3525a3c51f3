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


@app.command("classifier")
def classifier_cmd(config: ConfigOpt = None, set_: SetOpt = None, data: DataOpt = None, resume: ResumeOpt = False,
                   schema: Annotated[Path | None, typer.Option(help="Label schema YAML.")] = None) -> None:
    """Train the multi-label topic classifier (plus the TF-IDF baseline) and register it as `candidate`.

    Example: frontwire train classifier --data runs/data --set training.epochs=3
    """
    from frontwire.schema import load_schema
    from frontwire.train.classifier import train_classifier
    from frontwire.train.settings import load_classifier_config

    cfg = load_classifier_config(config, _overrides(set_, data))
    if resume and not cfg.output.dir:
        raise typer.BadParameter("--resume needs the run's folder: --set output.dir=runs/models/<name>")
    outcome = train_classifier(cfg, load_schema(schema), resume=resume)
    dev = outcome.metrics["dev"]
    typer.echo(json.dumps({"model_dir": str(outcome.model_dir), "run_id": outcome.run_id,
                           "registered_version": outcome.version, "tracking_uri": outcome.tracking_uri,
                           "dev_micro_f1": round(dev["micro"]["f1"], 4), "dev_macro_f1": round(dev["macro"]["f1"], 4),
                           "dev_per_label_f1": {k: round(v["f1"], 4) for k, v in dev["per_label"].items()}}, indent=1))


@app.command("ner")
def ner_cmd(config: ConfigOpt = None, set_: SetOpt = None, data: DataOpt = None, resume: ResumeOpt = False,
            schema: Annotated[Path | None, typer.Option(help="Label schema YAML.")] = None) -> None:
    """Train the NER model (BIO tags from character spans) and register it as `candidate`.

    Example: frontwire train ner --data runs/data --set training.epochs=3
    """
    from frontwire.schema import load_schema
    from frontwire.train.ner import train_ner
    from frontwire.train.settings import load_ner_config

    cfg = load_ner_config(config, _overrides(set_, data))
    if resume and not cfg.output.dir:
        raise typer.BadParameter("--resume needs the run's folder: --set output.dir=runs/models/<name>")
    outcome = train_ner(cfg, load_schema(schema), resume=resume)
    dev = outcome.metrics["dev"]
    typer.echo(json.dumps({"model_dir": str(outcome.model_dir), "run_id": outcome.run_id,
                           "registered_version": outcome.version, "tracking_uri": outcome.tracking_uri,
                           "dev_entity_f1": round(dev["micro"]["f1"], 4),
                           "dev_per_type_f1": {k: round(v["f1"], 4) for k, v in dev["per_type"].items()}}, indent=1))
