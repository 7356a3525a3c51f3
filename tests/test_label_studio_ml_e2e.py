"""Label Studio drives frontwire as its ML backend, end to end, on loopback.

A real Label Studio server and a real `frontwire serve --labelstudio` process: the project is created from the
generated labeling config, the backend is connected through the SDK's `ml` endpoints (with basic auth), tasks are
imported, Label Studio itself asks for predictions (Data Manager action "Retrieve predictions"), and what it stored
is checked against the predictor: same labels, exact span texts in the editor's UTF-16 offsets (an emoji paragraph
included), the registered model version. Then Label Studio's Train button (SDK `ml.train`) queues a background
`frontwire retrain` that pulls the project, trains, registers, decides promotion, and the server swaps in a new
champion without a restart, answering predictions throughout.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontwire.documents import content_hash
from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.settings import load_labeling_config
from frontwire.offsets import py_span_to_utf16
from frontwire.paths import sample_export
from frontwire.predictor import Predictor
from frontwire.schema import load_schema
from frontwire.serve.loadtest import start_server, stop_server

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]

SCHEMA = load_schema()
LABELING = load_labeling_config()
NAMES = {"classifier": "frontwire-classifier", "ner": "frontwire-ner"}
TOKEN = "e2e-backend-token"
NEW_TEXTS = [
    "🇺🇦 Russian missiles struck Kyiv overnight, Zelensky said 💥 as NATO discussed HIMARS.",
    "EU foreign ministers agreed a new package of sanctions on Russian LNG in Brussels.",
    "Ukrainian troops advanced near Robotyne, the general staff in Kyiv said on Monday.",
    "Subscribe to Premium to read every live update — first month €1.",
    "Diplomats from Turkey and the UN met in Istanbul to discuss the grain corridor.",
]
TINY_RETRAIN = [
    "--limit",
    "24",
    "--bootstrap",
    "100",
    "--classifier-set",
    "training.max_steps=2",
    "--classifier-set",
    "training.epochs=1",
    "--classifier-set",
    "mlflow.baseline=false",
    "--classifier-set",
    "ensemble.lexical=false",
    "--ner-set",
    "training.max_steps=2",
    "--ner-set",
    "training.epochs=1",
]


def seed(client: Any, title: str) -> int:
    """The labelled history (the sample export, annotations included) plus new unlabelled paragraphs."""
    project = client.projects.create(title=title, label_config=label_studio_config(SCHEMA, LABELING))
    history = json.loads(sample_export().read_text(encoding="utf-8"))
    payload = []
    for task in history:
        annotations = [
            {
                "result": a.get("result") or [],
                "was_cancelled": bool(a.get("was_cancelled")),
                "ground_truth": bool(a.get("ground_truth")),
            }
            for a in task.get("annotations") or []
        ]
        payload.append(
            {
                "data": {**task["data"], "content_hash": content_hash(task["data"]["text"])},
                **({"annotations": annotations} if annotations else {}),
            }
        )
    payload += [{"data": {LABELING.text_field: text, "paragraph_id": f"e2e-{i}"}} for i, text in enumerate(NEW_TEXTS)]
    client.projects.import_tasks(id=project.id, request=payload, return_task_ids=True)
    return project.id


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_label_studio_uses_frontwire_as_ml_backend(label_studio: Any, tiny_models: Any, tmp_path: Path) -> None:
    from label_studio_sdk import LabelStudio
    from mlflow.tracking import MlflowClient

    # an isolated copy of the session's store and records: the retrain adds versions and may move aliases
    home = tmp_path / "home"
    shutil.copytree(tiny_models.data_dir, home / "data")
    shutil.copy(tiny_models.home / "mlflow.db", home / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champions = {}
    for kind, name in NAMES.items():
        version = registry.get_model_version_by_alias(name, "candidate").version
        registry.set_registered_model_alias(name, "champion", version)
        champions[kind] = str(version)
    model_version = f"{NAMES['classifier']}:v{champions['classifier']}+{NAMES['ner']}:v{champions['ner']}"

    log = tmp_path / "backend.log"
    env = {
        "FRONTWIRE_HOME": str(home),
        "MLFLOW_TRACKING_URI": uri,
        "FRONTWIRE_API_TOKEN": TOKEN,
        "TOKENIZERS_PARALLELISM": "false",
    }
    process, port = start_server(
        ["--labelstudio", "--backend", "torch", "--set", f"labelstudio.retrain_args={json.dumps(TINY_RETRAIN)}"],
        env=env,
        log_path=log,
    )
    backend_url = f"http://127.0.0.1:{port}"
    basic = base64.b64encode(f"labelstudio:{TOKEN}".encode()).decode()
    backend = httpx.Client(base_url=backend_url, timeout=60, headers={"Authorization": f"Basic {basic}"})
    try:
        client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
        project_id = seed(client, f"frontwire ml backend {uuid.uuid4().hex[:8]}")

        # --- connect: Label Studio calls /health and /setup and records the model version ---
        ml = client.ml.create(
            project=project_id,
            url=backend_url,
            title="frontwire",
            auth_method="BASIC_AUTH",
            basic_auth_user="labelstudio",
            basic_auth_pass=TOKEN,
            timeout=100,
        )
        connected = client.ml.get(id=ml.id)
        assert connected.state == "CO", (connected.state, connected.error_message, log.read_text()[-2000:])
        assert connected.model_version == model_version

        # --- Label Studio asks for predictions of the new tasks, in one call ---
        tasks = [
            t
            for t in client.tasks.list(project=project_id, fields="all")
            if str(t.data.get("paragraph_id", "")).startswith("e2e-")
        ]
        assert len(tasks) == len(NEW_TEXTS)
        started = time.perf_counter()
        client.actions.create(
            id="retrieve_tasks_predictions",
            project=project_id,
            selected_items={"all": False, "included": [t.id for t in tasks]},
        )
        elapsed = time.perf_counter() - started
        assert elapsed < 60, elapsed

        predictor = Predictor(
            registry_dir(home, "classifier", champions), registry_dir(home, "ner", champions), device="cpu"
        )
        expected = dict(zip(NEW_TEXTS, predictor.predict(NEW_TEXTS), strict=True))
        spans_seen = 0
        for task in tasks:
            text = task.data[LABELING.text_field]
            [prediction] = client.predictions.list(task=task.id)
            assert prediction.model_version == model_version
            assert 0.0 <= prediction.score <= 1.0
            want = expected[text]
            choices = [item for item in prediction.result if item["type"] == "choices"]
            assert [c["value"]["choices"] for c in choices] == ([want["labels"]] if want["labels"] else [])
            assert all(
                (c["from_name"], c["to_name"]) == (LABELING.topics_control, LABELING.text_field) for c in choices
            )
            spans = [item for item in prediction.result if item["type"] == "labels"]
            utf16 = text.encode("utf-16-le")
            got = []
            for span in spans:
                start, end = span["value"]["start"], span["value"]["end"]
                assert utf16[2 * start : 2 * end].decode("utf-16-le") == span["value"]["text"]  # editor units
                assert span["from_name"] == LABELING.entities_control
                got.append((start, end, span["value"]["labels"][0], span["value"]["text"]))
            assert got == [
                (*py_span_to_utf16(text, e["start"], e["end"]), e["label"], e["text"]) for e in want["entities"]
            ]
            spans_seen += len(got)
        assert spans_seen > 0, "the tiny NER model tagged nothing: nothing was checked"
        emoji_task = next(t for t in tasks if t.data[LABELING.text_field] == NEW_TEXTS[0])
        [emoji_prediction] = client.predictions.list(task=emoji_task.id)
        assert any(item["value"].get("text") == "Kyiv" for item in emoji_prediction.result), emoji_prediction.result

        # --- the Train button: queued at once, runs `frontwire retrain` in the background ---
        started = time.perf_counter()
        client.ml.train(id=ml.id)
        assert time.perf_counter() - started < 10
        jobs = wait_for(lambda: backend.get("/training/jobs").json()["jobs"], 10, "a training job")
        job_id = jobs[0]["id"]
        assert jobs[0]["project"] == project_id and jobs[0]["reason"] == "START_TRAINING"
        # predictions are still answered while the retrain runs
        answer = backend.post(
            "/predict",
            json={
                "tasks": [{"id": 1, "data": {"text": NEW_TEXTS[1]}}],
                "label_config": label_studio_config(SCHEMA, LABELING),
            },
        )
        assert answer.status_code == 200
        status = wait_for(
            lambda: (
                (s := backend.post("/job_status", json={"job": job_id}).json())["job_status"]
                not in ("queued", "started")
                and s
            ),
            600,
            "the retrain to end",
            interval=2,
        )
        assert status["job_status"] == "finished", (status, Path(status["log_file"]).read_text()[-3000:])
        summary = status["summary"]
        promoted = {kind: summary[kind]["decision"]["promoted"] for kind in NAMES}
        for kind, name in NAMES.items():
            assert str(registry.get_model_version_by_alias(name, "candidate").version) == str(summary[kind]["version"])
        now = backend.get("/health").json()["model_version"]
        new_version = "+".join(
            f"{name}:v{summary[kind]['version'] if promoted[kind] else champions[kind]}" for kind, name in NAMES.items()
        )
        assert now == new_version
        assert status["models_reloaded"] is any(promoted.values())
    finally:
        backend.close()
        stop_server(process)


def registry_dir(home: Path, kind: str, versions: dict[str, str]) -> Path:
    """Where the server keeps the registered version it serves (frontwire/model_sources.py downloads it once)."""
    found = sorted((home / "serve-models" / NAMES[kind] / versions[kind]).glob("**/frontwire.json"))
    assert found, f"no downloaded {kind} model under {home / 'serve-models'}"
    return found[0].parent
