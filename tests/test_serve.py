"""`frontwire serve` as a real process on a free loopback port, with the tiny registered models, over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from frontwire.modeling import ModelMeta
from frontwire.predictor import Predictor
from frontwire.schema import load_schema
from frontwire.serve.loadtest import start_server, stop_server

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXTS = [
    "Russian missiles struck Kyiv overnight, officials said.",
    "Subscribe to our newsletter for the latest updates.",
    "Zelenskyy met Biden in Washington to discuss F-16 deliveries and sanctions on Gazprom.",
    "Ukrainian forces advanced near Bakhmut, the general staff said.",
    "The EU agreed a new package of sanctions.",
]
# uvicorn re-raises the SIGTERM it handled once shutdown is done, so a graceful stop exits by that signal.
GRACEFUL = (0, -signal.SIGTERM)
LIMITS = ("limits.max_texts=8", "limits.max_chars=2000", "limits.max_body_bytes=65536", "limits.max_paragraphs=16")


def server_env(tiny_models) -> dict[str, str]:
    return {"FRONTWIRE_HOME": str(tiny_models.home), "MLFLOW_TRACKING_URI": tiny_models.tracking_uri,
            "FRONTWIRE_API_TOKEN": TOKEN, "TOKENIZERS_PARALLELISM": "false"}


def overrides(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    """No model flags: the server must find the registry's `champion`, fall back to `candidate` and say so."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process, port = start_server(["--backend", "torch", "--max-wait-ms", "20", "--max-batch-size", "16",
                                  *overrides(*LIMITS)], env=server_env(tiny_models), log_path=log)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        yield client, port, log
    assert stop_server(process) in GRACEFUL
    assert "server_stopped" in log.read_text()


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


def test_health_readiness_models_and_docs(server, tiny_models) -> None:
    client, _, log = server
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and set(ready["models"]) == {"classifier", "ner"}
    assert client.get("/v1/models").status_code == 401
    models = client.get("/v1/models", headers=AUTH).json()["models"]
    meta = ModelMeta.load(tiny_models.classifier_dir)
    assert models["classifier"]["labels"] == meta.labels and models["classifier"]["thresholds"] == meta.thresholds
    assert models["ner"]["entity_types"] == load_schema().entity_names
    version = MlflowClient(tracking_uri=tiny_models.tracking_uri).get_model_version_by_alias("frontwire-ner",
                                                                                             "candidate")
    assert models["ner"]["version"] == str(version.version) and models["ner"]["alias"] == "candidate"
    assert "model_alias_missing name=frontwire-classifier alias=champion fallback=candidate" in log.read_text()
    openapi = client.get("/openapi.json").json()
    assert "examples" in openapi["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert {"413", "422"} <= set(openapi["paths"]["/v1/predict"]["post"]["responses"])
    assert client.get("/docs").status_code == 200


def test_predict_answers_each_text_in_order_with_model_versions(server, tiny_models) -> None:
    client, _, _ = server
    response = client.post("/v1/predict", json={"texts": TEXTS}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    expected = Predictor(tiny_models.classifier_dir, tiny_models.ner_dir, device="cpu").predict(TEXTS)
    schema = load_schema()
    assert len(body["predictions"]) == len(TEXTS)
    for prediction, want, text in zip(body["predictions"], expected, TEXTS, strict=True):
        assert prediction["labels"] == want["labels"]
        assert set(prediction["scores"]) == set(schema.topic_names)
        assert [(e["start"], e["end"], e["label"]) for e in prediction["entities"]] == \
            [(e["start"], e["end"], e["label"]) for e in want["entities"]]
        assert all(text[e["start"] : e["end"]] == e["text"] for e in prediction["entities"])
    assert body["models"]["classifier"]["name"] == "frontwire-classifier"
    assert body["models"]["classifier"]["alias"] == "candidate" and body["models"]["classifier"]["version"]

    only_ner = client.post("/v1/predict", json={"texts": TEXTS[:2], "tasks": ["ner"]}, headers=AUTH).json()
    assert set(only_ner["models"]) == {"ner"}
    assert all(set(p) == {"entities"} for p in only_ner["predictions"])


def test_articles_from_text_and_html_carry_paragraph_offsets(server) -> None:
    client, _, _ = server
    article = "Kyiv came under attack overnight.\n\n  Putin met Xi in Beijing.  \n\n\nSubscribe now."
    body = client.post("/v1/articles", json={"id": "a1", "text": article}, headers=AUTH).json()
    assert body["id"] == "a1" and "text" not in body
    assert [p["text"] for p in body["paragraphs"]] == ["Kyiv came under attack overnight.",
                                                      "Putin met Xi in Beijing.", "Subscribe now."]
    assert all(article[p["start"] : p["end"]] == p["text"] and "labels" in p for p in body["paragraphs"])
    html = "<html><body><nav>Home | World</nav><h1>Strikes on Odesa</h1><p>Russia <b>launched</b> drones.</p>"
    page = client.post("/v1/articles", json={"html": html, "tasks": ["classifier"]}, headers=AUTH).json()
    assert [p["text"] for p in page["paragraphs"]] == ["Home | World", "Strikes on Odesa", "Russia launched drones."]
    assert all(page["text"][p["start"] : p["end"]] == p["text"] for p in page["paragraphs"])


@pytest.mark.parametrize(("kwargs", "status", "message"), [
    ({"json": {"texts": ["a"] * 9}}, 413, "texts holds 9 items; max_texts=8"),
    ({"json": {"texts": ["ok", "b" * 2001]}}, 413, "texts[1] has 2001 characters"),
    ({"content": b'{"texts": ["' + b"x" * 70000 + b'"]}'}, 413, "max_body_bytes=65536"),
    ({"json": {"texts": ["ok", "  \n\t"]}}, 422, "texts[1] is empty or whitespace only"),
    ({"json": {"texts": []}}, 422, "texts: List should have at least 1 item"),
    ({"json": {"texts": ["ok", 7]}}, 422, "texts[1]: Input should be a valid string"),
    ({"json": {"texts": ["ok"], "tasks": ["sentiment"]}}, 422, "tasks[0]"),
    ({"json": {"text": ["ok"]}}, 422, "text: Extra inputs are not permitted"),
    ({"content": b'{"texts": ["ok"'}, 422, "not valid JSON"),
    ({"content": b'{"texts": ["\xff"]}'}, 422, "not valid UTF-8"),
    ({"content": b'{"texts": ["\\ud800"]}'}, 422, "unpaired surrogate"),
    ({"content": b"[" * 5000 + b"]" * 5000}, 422, "not acceptable JSON"),
    ({"content": b"texts=a", "headers": {"content-type": "text/plain"}}, 415, "application/json"),
])
def test_bad_input_is_a_4xx_naming_the_problem(server, kwargs, status, message) -> None:
    client, _, _ = server
    kwargs = dict(kwargs)
    headers = {"content-type": "application/json", **AUTH, **kwargs.pop("headers", {})}
    response = client.post("/v1/predict", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_auth_is_required_and_checked(server) -> None:
    client, _, _ = server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        response = client.post("/v1/predict", json={"texts": ["a"]}, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # probes stay open
    # CORS is off unless configured: a browser on another origin gets no allow-origin header
    cross = client.post("/v1/predict", json={"texts": ["a"]}, headers={**AUTH, "Origin": "https://evil.example"})
    assert cross.status_code == 200 and "access-control-allow-origin" not in cross.headers
    assert client.options("/v1/predict", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "POST"}).status_code == 405


def test_concurrent_requests_are_batched_and_answered_in_order(server) -> None:
    client, port, _ = server
    single = {t: client.post("/v1/predict", json={"texts": [t]}, headers=AUTH).json()["predictions"][0]
              for t in TEXTS}
    before = metric(client, "frontwire_batch_size_count"), metric(client, "frontwire_batch_size_sum")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60) as aclient:
            return await asyncio.gather(*(aclient.post("/v1/predict", json={"texts": [TEXTS[i % 5]]})
                                          for i in range(20)))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    for i, response in enumerate(responses):
        assert response.json()["predictions"][0]["labels"] == single[TEXTS[i % 5]]["labels"]
    batches = metric(client, "frontwire_batch_size_count") - before[0]
    assert metric(client, "frontwire_batch_size_sum") - before[1] == 20
    assert batches < 20, "20 concurrent one-text requests ran as 20 forward passes: nothing was batched"


def test_metrics_count_requests_errors_latency_and_queue(server) -> None:
    client, _, _ = server
    client.post("/v1/predict", json={"texts": []}, headers=AUTH)
    text = client.get("/metrics").text
    assert re.search(r'frontwire_requests_total\{method="POST",route="/v1/predict",status="200"\} [1-9]', text)
    assert re.search(r'frontwire_errors_total\{kind="422",route="/v1/predict"\} [1-9]', text)
    assert 'frontwire_request_latency_seconds_bucket{le="0.5",route="/v1/predict"}' in text
    assert "frontwire_queue_depth 0.0" in text and "frontwire_ready 1.0" in text
    assert 'frontwire_model_info{alias="candidate",backend="torch",kind="classifier"' in text


def test_reload_swaps_models_without_dropping_requests(server, tiny_models) -> None:
    client, port, _ = server

    async def traffic_during_reload() -> tuple[httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=120) as aclient:
            async def stream() -> list[httpx.Response]:
                return [await aclient.post("/v1/predict", json={"texts": TEXTS[:2]}) for _ in range(15)]

            streams = [asyncio.create_task(stream()) for _ in range(3)]
            await asyncio.sleep(0.2)
            reload = await aclient.post("/admin/reload", json={"classifier": str(tiny_models.classifier_dir)})
            return reload, [r for task in streams for r in await task]

    reload, responses = asyncio.run(traffic_during_reload())
    assert reload.status_code == 200, reload.text
    assert reload.json()["changed"] and reload.json()["models"]["classifier"]["source"] == str(
        tiny_models.classifier_dir)
    assert [r.status_code for r in responses] == [200] * len(responses)
    # each answer comes whole from the old (registry) or the new (dir) model, never from a mix or nothing
    sources = {r.json()["models"]["classifier"]["source"] for r in responses}
    assert sources <= {"models:/frontwire-classifier@champion", str(tiny_models.classifier_dir)}
    after = client.post("/v1/predict", json={"texts": ["a"]}, headers=AUTH).json()["models"]["classifier"]
    assert after["source"] == str(tiny_models.classifier_dir) and after["version"] is None
    bad = client.post("/admin/reload", json={"classifier": str(tiny_models.ner_dir)}, headers=AUTH)
    assert bad.status_code == 422 and "not a classifier model" in bad.json()["detail"]
    back = client.post("/admin/reload", headers=AUTH).json()  # configured sources again: the registry
    assert back["models"]["classifier"]["alias"] == "candidate"


def test_graceful_shutdown_finishes_queued_requests(tiny_models, tmp_path: Path) -> None:
    # One request per batch (8 texts, max batch 8), so while one runs the others wait in the queue.
    process, port = start_server(
        ["--classifier", str(tiny_models.classifier_dir), "--ner", str(tiny_models.ner_dir), "--backend", "torch",
         "--max-batch-size", "8", *overrides("models.warmup=false")],
        env=server_env(tiny_models), log_path=tmp_path / "server.log")
    texts = [" ".join(TEXTS)] * 8

    async def requests_then_sigterm() -> tuple[list[int], float]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=120) as aclient:
            pending = [asyncio.create_task(aclient.post("/v1/predict", json={"texts": texts})) for _ in range(6)]
            depth = 0.0
            for _ in range(200):
                await asyncio.sleep(0.05)
                found = re.search(r"^frontwire_queue_depth (\S+)$", (await aclient.get("/metrics")).text, re.M)
                depth = float(found.group(1)) if found else 0.0
                if depth >= 24:
                    break
            process.terminate()
            return [(await task).status_code for task in pending], depth

    try:
        statuses, depth = asyncio.run(requests_then_sigterm())
        assert depth >= 24, "the requests were not queued when SIGTERM came"
        assert statuses == [200] * 6
        assert process.wait(60) in GRACEFUL
    finally:
        stop_server(process)
    assert "server_stopped" in (tmp_path / "server.log").read_text()


def test_serve_refuses_a_bad_model_source_before_listening(tiny_models) -> None:
    exe = Path(sys.executable).with_name("frontwire")
    result = subprocess.run([str(exe), "serve", "--port", "1", "--classifier", str(tiny_models.ner_dir)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **server_env(tiny_models)})
    assert result.returncode == 2 and "is a ner model, not a classifier model" in result.stderr


def test_a_public_bind_needs_a_token_or_insecure(tiny_models, monkeypatch) -> None:
    from frontwire.serve.server import UnsafeBind, check_bind
    from frontwire.serve.settings import load_serve_config

    exe = Path(sys.executable).with_name("frontwire")
    env = {**os.environ, **server_env(tiny_models), "FRONTWIRE_API_TOKEN": ""}
    result = subprocess.run([str(exe), "serve", "--host", "0.0.0.0", "--port", "1"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2 and "refusing to serve on '0.0.0.0' without a token" in result.stderr

    monkeypatch.delenv("FRONTWIRE_API_TOKEN", raising=False)  # the caller's own token must not decide the case
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        check_bind(load_serve_config(None, [f"server.host=\"{host}\""]))
    for host in ("0.0.0.0", "::", "10.1.2.3", "news.example.org"):
        with pytest.raises(UnsafeBind, match="without a token"):
            check_bind(load_serve_config(None, [f"server.host=\"{host}\""]))
        check_bind(load_serve_config(None, [f"server.host=\"{host}\""]), insecure=True)
        check_bind(load_serve_config(None, [f"server.host=\"{host}\"", f"auth.token={TOKEN}"]))
