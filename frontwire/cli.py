"""The `frontwire` command: one subcommand group per pipeline stage."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from frontwire.evaluate.cli import evaluate_cmd
from frontwire.labeling.cli import app as labeling_app
from frontwire.logs import configure_logging
from frontwire.serve import cli as serve_cli
from frontwire.serve.batch.cli import predict as predict_cmd
from frontwire.train.cli import app as train_app
from frontwire.train.cli import promote_cmd, run_cmd
from frontwire.train.retrain import retrain_cmd

# MLflow otherwise reaches for a telemetry host (closed network here) and writes into $HOME.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(
    help="frontwire: topic classifier + NER for war-news paragraphs (Label Studio → train → MLflow → serve).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(labeling_app, name="labeling")
app.add_typer(train_app, name="train")
app.command("predict")(predict_cmd)
app.command("run")(run_cmd)
app.command("promote")(promote_cmd)
app.command("retrain")(retrain_cmd)
app.command("evaluate")(evaluate_cmd)
app.command("serve")(serve_cli.serve_cmd)
app.command("bench")(serve_cli.bench_cmd)
app.command("loadtest")(serve_cli.loadtest_cmd)
app.command("export-onnx")(serve_cli.export_onnx_cmd)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    configure_logging(verbose)
