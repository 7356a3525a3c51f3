"""The registered pyfunc models served by `mlflow models serve` over real HTTP: `scores` arrives as a JSON object
of floats and `entities` as a list of objects (no JSON inside JSON), equal to what frontwire's predictor gives,
and the server loads them without unpickling anything (models from code)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest

from frontwire.predictor import Predictor
from frontwire.records import read_records
from frontwire.schema import load_schema
from frontwire.serve.loadtest import free_port

SCHEMA = load_schema()


@pytest.fixture(scope="module")
def served(tiny_models) -> Iterator[dict[str, str]]:
    """Both registered models, each behind its own `mlflow models serve` (started together: ~10 s of imports)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tiny_models.tracking_uri, "FRONTWIRE_HOME": str(tiny_models.home),
           # a cloudpickled model would fail to load: the registered pyfunc must need no pickle at all
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false", "TOKENIZERS_PARALLELISM": "false",
           # mlflow execs `uvicorn` by name: the venv's bin must be on PATH even when the venv is not activated
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    mlflow_exe = Path(sys.executable).with_name("mlflow")
    servers, urls = [], {}
    try:
        for kind in ("classifier", "ner"):
            port = free_port()
            servers.append(subprocess.Popen(
                [str(mlflow_exe), "models", "serve", "-m", f"models:/frontwire-{kind}@candidate", "--env-manager",
                 "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            urls[kind] = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        for server, url in zip(servers, urls.values(), strict=True):
            while True:
                if server.poll() is not None:
                    pytest.fail(f"mlflow models serve exited {server.returncode}: {server.stderr.read()[-6000:]}")
                try:
                    if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{url} not up after 180 s"
                time.sleep(0.5)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def texts_with_names(tiny_models) -> list[str]:
    records = read_records(tiny_models.data_dir / "records.jsonl")
    named = [r.text for r in records if r.entities][:6]
    return [*named, "Subscribe to our newsletter 🚀 — «Київ»"]


def invoke(url: str, texts: list[str]) -> list[dict]:
    response = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": ["text"],
                                                                          "data": [[t] for t in texts]}}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_served_classifier_answers_scores_as_an_object_of_floats(served, tiny_models) -> None:
    texts = texts_with_names(tiny_models)
    answered = invoke(served["classifier"], texts)
    expected = Predictor(classifier_dir=tiny_models.classifier_dir).predict(texts)
    assert len(answered) == len(texts)
    for row, want in zip(answered, expected, strict=True):
        assert set(row) == {"labels", "scores"}
        assert isinstance(row["scores"], dict) and set(row["scores"]) == set(SCHEMA.topic_names)
        assert all(isinstance(v, float) for v in row["scores"].values())
        assert row["scores"] == pytest.approx(want["scores"], abs=2e-4)  # 4 decimals; threads may differ
        assert row["labels"] == want["labels"]


def test_served_ner_answers_entities_as_a_list_of_objects(served, tiny_models) -> None:
    texts = texts_with_names(tiny_models)
    answered = invoke(served["ner"], texts)
    expected = Predictor(ner_dir=tiny_models.ner_dir).predict(texts)
    assert any(row["entities"] for row in answered), "the tiny NER model tags some names in its training texts"
    for text, row, want in zip(texts, answered, expected, strict=True):
        assert set(row) == {"entities"} and isinstance(row["entities"], list)
        for entity in row["entities"]:
            assert set(entity) == {"label", "start", "end", "text", "score"}
            assert text[entity["start"] : entity["end"]] == entity["text"] and entity["label"] in SCHEMA.entity_names
        assert [{k: v for k, v in e.items() if k != "score"} for e in row["entities"]] == [
            {k: v for k, v in e.items() if k != "score"} for e in want["entities"]]
        assert [e["score"] for e in row["entities"]] == pytest.approx([e["score"] for e in want["entities"]],
                                                                       abs=2e-4)


def test_registered_pyfunc_is_code_with_a_typed_signature(tiny_models, tmp_path: Path) -> None:
    """Models from code: the registered model stores the code file, not a cloudpickle of frontwire's class, and
    its signature says `scores` is one double per label and `entities` an array of span objects."""
    mlflow.set_tracking_uri(tiny_models.tracking_uri)
    for kind in ("classifier", "ner"):
        local = Path(mlflow.artifacts.download_artifacts(f"models:/frontwire-{kind}@candidate",
                                                         dst_path=str(tmp_path / kind)))
        assert (local / "pyfunc_code.py").is_file() and not list(local.rglob("*.pkl"))
        outputs = mlflow.models.Model.load(str(local)).signature.outputs.to_dict()
        if kind == "classifier":
            scores = next(c for c in outputs if c["name"] == "scores")
            assert scores["type"] == "object"
            assert {name: p["type"] for name, p in scores["properties"].items()} == dict.fromkeys(
                SCHEMA.topic_names, "double")
        else:
            (entities,) = outputs
            assert entities["type"] == "array" and entities["items"]["type"] == "object"
            assert set(entities["items"]["properties"]) == {"label", "start", "end", "text", "score"}
