"""`frontwire evaluate MODEL [MODEL2] --data DATA --out DIR`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

ModelsArg = Annotated[
    list[str],
    typer.Argument(
        help="MODEL [MODEL2]: a model dir, runs:/<run_id>, models:/<name>@<alias>, models:/<name>/<version>, "
        "or baseline:tfidf. Two models are compared.",
        show_default=False,
        metavar="MODEL [MODEL2]",
    ),
]


def evaluate_cmd(
    models: ModelsArg,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Records folder, Label Studio export (.json), records JSONL, or CoNLL file (NER).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output folder: metrics.json, plots/, report.html, report.md, input_errors.jsonl.",
            show_default=False,
        ),
    ],
    split: Annotated[str, typer.Option(help="test | dev | train | all (records folders and exports).")] = "test",
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Compare MODEL (A) with MODEL2 (B): B - A with a paired bootstrap interval."),
    ] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap (and baseline) seed.")] = 13,
    top: Annotated[int, typer.Option(help="Worst misses listed in the report.")] = 50,
    batch_size: Annotated[int, typer.Option(help="Inference batch size.")] = 32,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: all cores).")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the working folder's store)."),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: the model's own, else frontwire-evaluation).")
    ] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Log an evaluation run to MLflow.")] = True,
) -> None:
    """Score a model (or compare two) on labelled data: metrics with bootstrap CIs, plots, error report.

    Examples:

    frontwire evaluate models:/frontwire-classifier@candidate --data runs/data --out runs/eval/clf

    frontwire evaluate --compare baseline:tfidf runs:/<run_id> --data runs/data --out runs/eval/vs-baseline

    frontwire evaluate runs/models/ner-… --data ../shared/benchmarks/wnut17/emerging.test.annotated --out x
    """
    from frontwire.evaluate.data import DataError
    from frontwire.evaluate.models import ModelSpecError
    from frontwire.evaluate.runner import EvalOptions, run_evaluation
    from frontwire.labeling.importer import ExportFileError

    if compare and len(models) != 2:
        raise typer.BadParameter(f"--compare needs two models (A B), got {len(models)}", param_hint="MODEL")
    if len(models) > 2:
        raise typer.BadParameter(f"one model, or two to compare; got {len(models)}", param_hint="MODEL")
    options = EvalOptions(
        data=data,
        out=out,
        split=split,
        n_resamples=bootstrap,
        seed=seed,
        top=top,
        batch_size=batch_size,
        device=device,
        threads=threads,
        tracking_uri=tracking_uri,
        experiment=experiment,
        log_to_mlflow=mlflow,
    )
    try:
        outcome = run_evaluation(models, options)
    except (ModelSpecError, DataError, ExportFileError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    payload = outcome.payload
    summary = {
        "out": str(outcome.out_dir),
        "mlflow_run_id": outcome.mlflow_run_id,
        "kind": payload["kind"],
        "records": payload["data"]["records"],
        "input_errors": payload["data"]["input_errors"],
        "models": {
            side: {
                "model": r["model"]["name"],
                "seconds": r["timing"]["predict_seconds"],
                **{
                    k: [round(v["value"], 4), round(v["low"], 4), round(v["high"], 4)]
                    for k, v in r["confidence_intervals"].items()
                    if k in ("micro_f1", "macro_f1")
                },
            }
            for side, r in payload["models"].items()
        },
    }
    if payload["comparison"]:
        summary["b_minus_a"] = {
            k: [round(c["value"], 4), round(c["low"], 4), round(c["high"], 4)]
            for k, c in payload["comparison"]["paired_bootstrap"].items()
            if k in ("micro_f1", "macro_f1")
        }
    typer.echo(json.dumps(summary, indent=1))
