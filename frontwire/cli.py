"""The `frontwire` command: one subcommand group per pipeline stage."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from frontwire.labeling.cli import app as labeling_app
from frontwire.train.cli import app as train_app
from frontwire.logs import configure_logging

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


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    configure_logging(verbose)
