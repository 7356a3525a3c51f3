"""How long Label Studio waits for frontwire's pre-annotations of N tasks (the ML backend, end to end).

    python bench/labelstudio_backend.py --tasks 500 --out runs/bench/labelstudio_backend.json

A real Label Studio (started here from .venv-ls like the tests do, or --ls-url/--ls-token of a running one) and
a real `frontwire serve --labelstudio` on loopback with the champion models of the default store (or
--classifier/--ner). N distinct real paragraphs from the shared export become tasks of a fresh project; the
backend is connected through the SDK; then the Data Manager action "Retrieve predictions" over all tasks is
timed: Label Studio sends every selected task in ONE /predict call and waits for it (its ML_TIMEOUT_PREDICT,
100 s by default), then stores the predictions. Reported: that call's wall time, the backend's own /predict
time (from its Prometheus histogram), predictions stored, and the load average while it ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import sample_export, shared_dir
from frontwire.schema import load_schema
from frontwire.serve.loadtest import start_server, stop_server

log = logging.getLogger("bench.labelstudio_backend")
REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-backend-token"


def paragraphs(count: int) -> list[str]:
    shared = shared_dir()
    export = shared / "data" / "labelstudio_export.json" if shared else sample_export()
    texts = list(dict.fromkeys(t["data"]["text"] for t in json.loads(export.read_text(encoding="utf-8"))))
    if len(texts) < count:
        raise SystemExit(f"{export} has only {len(texts)} distinct paragraphs; asked for {count}")
    return texts[:count]


def backend_seconds(server_log: Path) -> float:
    """Seconds the backend spent in /predict calls so far, from its one-line-per-request log."""
    text = server_log.read_text(encoding="utf-8", errors="replace")
    return sum(float(ms) for ms in re.findall(r"route=/predict status=200 ms=([0-9.]+)", text)) / 1000


def run(args: argparse.Namespace, ls_url: str, ls_token: str) -> dict:
    from label_studio_sdk import LabelStudio

    texts = paragraphs(args.tasks)
    serve_args = ["--labelstudio", "--backend", args.backend]
    for flag, value in (("--classifier", args.classifier), ("--ner", args.ner), ("--threads", args.threads)):
        if value:
            serve_args += [flag, str(value)]
    process, port = start_server(serve_args, env={"FRONTWIRE_API_TOKEN": TOKEN}, log_path=Path(args.server_log))
    try:
        client = LabelStudio(base_url=ls_url, api_key=ls_token, timeout=600)
        config = label_studio_config(load_schema(), load_labeling_config())
        project = client.projects.create(title=f"frontwire bench {uuid.uuid4().hex[:8]}", label_config=config)
        client.projects.import_tasks(id=project.id, request=[{"data": {"text": t}} for t in texts])
        started = time.perf_counter()
        ml = client.ml.create(project=project.id, url=f"http://127.0.0.1:{port}", title="frontwire",
                              auth_method="BASIC_AUTH", basic_auth_user="labelstudio", basic_auth_pass=TOKEN)
        connect_s = time.perf_counter() - started
        model_version = client.ml.get(id=ml.id).model_version
        before = backend_seconds(Path(args.server_log))
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
        wall = time.perf_counter() - started
        predictions = client.predictions.list(project=project.id)
        stored = sum(1 for p in predictions if p.model_version == model_version)
        spans = sum(1 for p in predictions for item in p.result if item.get("type") == "labels")
        return {
            "tasks": len(texts), "predictions_stored": stored, "entity_spans": spans, "model_version": model_version,
            "backend": args.backend, "connect_seconds": round(connect_s, 2),
            "label_studio_call_seconds": round(wall, 2),
            "backend_predict_seconds": round(backend_seconds(Path(args.server_log)) - before, 2),
            "tasks_per_second": round(len(texts) / wall, 1), "label_studio_predict_timeout_s": 100,
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--backend", default="onnx", help="torch | onnx | onnx-int8")
    parser.add_argument("--classifier", help="model dir or models:/… (default: registry champion)")
    parser.add_argument("--ner", help="model dir or models:/… (default: registry champion)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--ls-url", default=os.environ.get("LABEL_STUDIO_URL"))
    parser.add_argument("--ls-token", default=os.environ.get("LABEL_STUDIO_API_KEY"))
    parser.add_argument("--server-log", default="runs/bench/labelstudio_backend.server.log")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/labelstudio_backend.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Path(args.server_log).parent.mkdir(parents=True, exist_ok=True)
    if args.ls_url and args.ls_token:
        result = run(args, args.ls_url, args.ls_token)
    else:  # a throwaway server on loopback, exactly as the tests start it
        sys.path.insert(0, str(REPO / "tests"))
        from label_studio_server import LabelStudioServer

        with LabelStudioServer() as server:
            result = run(args, server.url, server.token)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log.info("result %s", json.dumps(result))


if __name__ == "__main__":
    main()
