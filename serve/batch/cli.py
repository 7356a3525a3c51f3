"""`frontwire predict`: batch inference over files and archives (see `frontwire.serve.batch`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders: JSONL(.gz/.bz2/.xz/.zst), CSV, Parquet, "
                                                      ".txt/.html/.json trees, tar(.gz), zip, WARC(.gz).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Result file: .parquet or .jsonl (.jsonl.gz).")],
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run: keep finished shards.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output and its shards.")] = False,
    text_field: Annotated[str | None, typer.Option(help="JSONL key / column with the text (default: text).")] = None,
    id_field: Annotated[str | None, typer.Option(help="JSONL key / column with the document id.")] = None,
    classifier: Annotated[str | None, typer.Option(
        help="Model dir, models:/NAME/VER, models:/NAME@ALIAS or none (default: registered champion, else newest).")
    ] = None,
    ner: Annotated[str | None, typer.Option(help="Like --classifier, for the NER model.")] = None,
    workers: Annotated[int | None, typer.Option(help="Cores to use (0 = all).")] = None,
    parallelism: Annotated[str | None, typer.Option(
        help="threads (default: one model copy, torch threads) or processes (one model copy per worker).")] = None,
    shard_size: Annotated[int | None, typer.Option(help="Paragraphs per shard (the unit of --resume).")] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave paragraph text out of the output.")] = False,
    errors: Annotated[Path | None, typer.Option(help="Errors file (default: OUTPUT.errors.jsonl).")] = None,
    backend: Annotated[str | None, typer.Option(
        help="auto (default: torch on a GPU, else onnx), torch, onnx or onnx-int8.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config YAML (default: predict.yaml).")
                      ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set runtime.chunk_size=512")
                    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Label every paragraph of an archive; writes OUTPUT, OUTPUT.errors.jsonl and prints the counts.

    Example: frontwire predict archive.jsonl.gz --output predictions.parquet
    """
    from frontwire.config import ConfigError
    from frontwire.serve.batch.engine import BatchError, run
    from frontwire.serve.batch.models import ModelResolutionError
    from frontwire.serve.batch.settings import load_predict_config

    flags = {"input.text_field": text_field, "input.id_field": id_field, "models.classifier": classifier,
             "models.ner": ner, "runtime.workers": workers, "runtime.parallelism": parallelism,
             "output.shard_size": shard_size, "runtime.backend": backend,
             "output.include_text": False if no_text else None}
    # flags become overrides as JSON scalars, so a model path or id with YAML-special characters stays a string
    overrides = [*(set_ or ()), *(f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None)]
    try:
        cfg = load_predict_config(config, overrides)
        result = run(list(inputs), output, cfg, resume=resume, overwrite=overwrite, errors_path=errors,
                     progress=progress)
    except (BatchError, ModelResolutionError, ConfigError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(json.dumps(result.__dict__, indent=1))
