"""`frontwire serve`, `frontwire bench`, `frontwire loadtest` and `frontwire export-onnx`.

Heavy imports (torch, FastAPI, MLflow) happen inside the commands so `frontwire --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Serve config YAML (default: packaged).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a key: --set limits.max_texts=128")]
BackendOpt = Annotated[str | None, typer.Option(help="torch | onnx | onnx-int8")]


def serve_cmd(
    config: ConfigOpt = None, set_: SetOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    classifier: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    ner: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    backend: BackendOpt = None,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for the models.")] = None,
    batching: Annotated[bool | None, typer.Option("--batching/--no-batching", help="Dynamic batching.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Texts per gathered batch.")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(help="Longest wait for a batch to fill.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store for models:/ sources.")] = None,
    labelstudio: Annotated[bool | None, typer.Option(
        "--labelstudio/--no-labelstudio", help="Also answer as Label Studio's ML backend (/setup, /predict, ...).")
    ] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Allow a non-loopback --host without a token (only behind a trusted network).")] = False,
) -> None:
    """Serve predictions over HTTP (FastAPI + uvicorn). Models default to the registry's `champion`.

    Example: frontwire serve --port 8080 --backend onnx; the token comes from $FRONTWIRE_API_TOKEN.
    A --host other than a loopback address needs that token (or --insecure): otherwise it exits with 2.
    As Label Studio's ML backend: frontwire serve --labelstudio --port 9090, then in Label Studio
    Project → Settings → Model → Connect Model, URL http://127.0.0.1:9090.
    """
    from frontwire.model_sources import ModelSourceError
    from frontwire.serve.server import UnsafeBind, serve
    from frontwire.serve.settings import load_serve_config

    flags = {"server.host": host, "server.port": port, "models.classifier": classifier, "models.ner": ner,
             "models.backend": backend, "models.threads": threads, "batching.enabled": batching,
             "batching.max_batch_size": max_batch_size, "batching.max_wait_ms": max_wait_ms,
             "models.tracking_uri": tracking_uri, "labelstudio.enabled": labelstudio}
    overrides = [*(set_ or ()), *(f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None)]
    try:
        serve(load_serve_config(config, overrides), insecure)
    except (ModelSourceError, UnsafeBind) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def bench_cmd(
    classifier: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    ner: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    paragraphs: Annotated[int, typer.Option(help="How many real paragraphs to time.")] = 200,
    threads: Annotated[int | None, typer.Option(help="Threads for every backend (default: all cores).")] = None,
    backends: Annotated[str, typer.Option(help="Comma list of frontwire backends.")] = "torch,onnx,onnx-int8",
    accuracy: Annotated[int, typer.Option(help="Labelled test paragraphs for the F1 comparison (0 = skip).")] = 200,
    output: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    rounds: Annotated[int, typer.Option(help="Timed rounds per variant, taking turns; best kept.")] = 2,
) -> None:
    """Paragraphs/s and tokens/s: the HF pipeline (or a naive loop) vs frontwire torch / ONNX fp32 / int8.

    Example: frontwire bench --paragraphs 200 --classifier runs/models/classifier --ner runs/models/ner
    """
    from frontwire.serve.bench import run_bench

    result = run_bench(classifier, ner, paragraphs, threads, [b for b in backends.split(",") if b], accuracy, rounds)
    if output:
        output.write_text(json.dumps(result, indent=1) + "\n")


def loadtest_cmd(
    classifier: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    ner: Annotated[str | None, typer.Option(help="Model dir or models:/name@alias.")] = None,
    backend: BackendOpt = "onnx",
    clients: Annotated[str, typer.Option(help="Comma list of concurrency levels.")] = "1,8,32",
    requests: Annotated[int, typer.Option(help="Max requests per level and mode.")] = 400,
    seconds: Annotated[float, typer.Option(help="Max seconds per level and mode.")] = 20.0,
    output: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    set_: SetOpt = None,
    text_chars: Annotated[int, typer.Option(help="Cut each paragraph to this many characters.")] = 5000,
) -> None:
    """Loopback load test of `frontwire serve`, dynamic batching on vs off, at several concurrency levels.

    Example: frontwire loadtest --clients 1,8,32 --requests 300 --seconds 15
    """
    from frontwire.serve.loadtest import run_loadtest

    result = run_loadtest(classifier, ner, backend or "onnx", [int(c) for c in clients.split(",") if c],
                          requests, seconds, server_overrides=set_ or (), text_chars=text_chars)
    if output:
        output.write_text(json.dumps(result, indent=1) + "\n")


def export_onnx_cmd(
    model_dir: Annotated[Path, typer.Argument(help="A frontwire model dir.")],
    precision: Annotated[str, typer.Option(help="fp32 | int8 | both")] = "both",
    force: Annotated[bool, typer.Option(help="Export again even when the cache is fresh.")] = False,
) -> None:
    """Export a model dir to ONNX (fp32 and/or dynamic int8) into <model_dir>/onnx/; serve does this on demand."""
    from frontwire.serve.onnx_backend import export_onnx

    for item in ("fp32", "int8") if precision == "both" else (precision,):
        if item not in ("fp32", "int8"):
            raise typer.BadParameter(f"precision must be fp32, int8 or both, not {precision!r}")
        typer.echo(export_onnx(model_dir, item, force=force))  # type: ignore[arg-type]
