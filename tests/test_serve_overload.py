"""Overload is shed, not queued: a real `frontwire serve` with a small queue and short waits, flooded over
loopback HTTP by more concurrent requests than it can hold, answers each one 200 in time or 503 with the
configured Retry-After, counts every 503 by reason in /metrics, and serves normally once the flood is over.

The long soak (2x the measured capacity for minutes, a reload in the middle, RSS) is `python bench/soak.py`.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from test_serve import AUTH, GRACEFUL, TEXTS, overrides, server_env

from frontwire.serve.loadtest import start_server, stop_server
from frontwire.serve.metrics import SHED_REASONS

DEADLINE_MS = 1500
RETRY_AFTER_S = 3
# The queue holds two requests of 8 texts; a request still queued after 60 ms, or not answered 1.5 s after it
# arrived, is shed. 48 requests at once are far more than one inference thread clears in time.
SETTINGS = ("batching.max_queue=16", "batching.max_batch_size=8", "batching.max_wait_ms=5",
            "batching.max_queue_wait_ms=60", f"batching.deadline_ms={DEADLINE_MS}",
            f"batching.retry_after_s={RETRY_AFTER_S}", "limits.max_texts=8", "limits.max_paragraphs=8",
            "server.log_requests=false", "models.warmup=false")
FLOOD = 48
TEXTS_PER_REQUEST = [" ".join(TEXTS) * 3] * 8


@pytest.fixture(scope="module")
def small_server(tiny_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("overload") / "server.log"
    process, port = start_server(["--classifier", str(tiny_models.classifier_dir), "--ner", str(tiny_models.ner_dir),
                                  "--backend", "torch", *overrides(*SETTINGS)], env=server_env(tiny_models),
                                 log_path=log)
    yield port
    assert stop_server(process) in GRACEFUL


def shed_counts(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^frontwire_shed_total\{reason="([^"]+)"\} (\S+)$', text, re.MULTILINE)}


async def flood(port: int, requests: int = FLOOD, probe: str | None = None
                ) -> tuple[list[tuple[int, float, httpx.Response]], httpx.Response | None]:
    """`requests` concurrent predictions of TEXTS_PER_REQUEST, and `probe` (a GET path) sent in the thick of it."""
    limits = httpx.Limits(max_connections=requests + 1, max_keepalive_connections=requests + 1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60,
                                 limits=limits) as client:
        async def one() -> tuple[int, float, httpx.Response]:
            started = time.perf_counter()
            response = await client.post("/v1/predict", json={"texts": TEXTS_PER_REQUEST})
            return response.status_code, time.perf_counter() - started, response

        async def probing() -> httpx.Response | None:
            if probe is None:
                return None
            await asyncio.sleep(0.2)
            return await client.get(probe)

        *answers, probed = await asyncio.gather(*(one() for _ in range(requests)), probing())
        return answers, probed


def test_a_flood_is_shed_with_retry_after_and_counted(small_server: int) -> None:
    port = small_server
    base = f"http://127.0.0.1:{port}"
    before = shed_counts(httpx.get(f"{base}/metrics").text)
    answers, _ = asyncio.run(flood(port))

    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    accepted = [seconds for status, seconds, _ in answers if status == 200]
    shed = [response for status, _, response in answers if status == 503]
    assert accepted and shed, f"expected both answered and shed requests, got {statuses}"
    for response in shed:
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
        reason = re.match(r"server busy \((\w+)\)", response.json()["detail"])
        assert reason and reason.group(1) in SHED_REASONS, response.json()
    # an answered request is answered within its deadline (plus what HTTP around it costs on a busy machine)
    assert max(accepted) < DEADLINE_MS / 1000 + 1.0, sorted(accepted)[-5:]

    metrics = httpx.get(f"{base}/metrics").text
    after = shed_counts(metrics)
    counted = {reason: after.get(reason, 0) - before.get(reason, 0) for reason in after}
    assert sum(counted.values()) == len(shed), (counted, len(shed))
    assert counted.get("queue_full", 0) > 0, counted  # 48 x 8 texts can never fit a 16-text queue
    # shed requests left the queue: nothing is left waiting, and the server answers normally again
    assert re.search(r"^frontwire_queue_depth 0\.0$", metrics, re.MULTILINE)
    again = httpx.post(f"{base}/v1/predict", json={"texts": TEXTS[:2]}, headers=AUTH, timeout=60)
    assert again.status_code == 200 and len(again.json()["predictions"]) == 2


def test_shedding_settings_that_contradict_each_other_are_refused() -> None:
    from frontwire.config import ConfigError
    from frontwire.serve.settings import load_serve_config

    with pytest.raises(ConfigError, match="longer than deadline_ms"):
        load_serve_config(None, ["batching.max_queue_wait_ms=5000", "batching.deadline_ms=1000"])
    with pytest.raises(ConfigError, match="not longer than max_wait_ms"):
        load_serve_config(None, ["batching.max_queue_wait_ms=5", "batching.max_wait_ms=5"])
    with pytest.raises(ConfigError, match="below limit_concurrency"):
        load_serve_config(None, ["server.limit_concurrency=64", "server.max_connections=32"])
    with pytest.raises(ConfigError, match="could never be queued"):
        load_serve_config(None, ["batching.max_queue=4", "limits.max_texts=8"])


# Few requests in progress, a queue that holds them all, and a queue wait the flood's work far exceeds.
BUSY_SETTINGS = ("server.limit_concurrency=10", "batching.max_queue=512", "batching.max_batch_size=8",
                 "batching.max_wait_ms=5", "batching.max_queue_wait_ms=300", "batching.deadline_ms=5000",
                 f"batching.retry_after_s={RETRY_AFTER_S}", "limits.max_texts=8", "server.log_requests=false",
                 "models.warmup=false")


def test_beyond_its_concurrency_or_its_predicted_wait_the_server_refuses_at_once(tiny_models, tmp_path) -> None:
    process, port = start_server(["--classifier", str(tiny_models.classifier_dir), "--ner", str(tiny_models.ner_dir),
                                  "--backend", "torch", *overrides(*BUSY_SETTINGS)], env=server_env(tiny_models),
                                 log_path=tmp_path / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        # one answered request times the model, so admission can predict how long queued work will take
        first = httpx.post(f"{base}/v1/predict", json={"texts": TEXTS_PER_REQUEST}, headers=AUTH, timeout=60)
        assert first.status_code == 200
        before = shed_counts(httpx.get(f"{base}/metrics").text)
        answers, probe = asyncio.run(flood(port, requests=40, probe="/healthz"))
        after = shed_counts(httpx.get(f"{base}/metrics").text)
    finally:
        assert stop_server(process) in GRACEFUL

    assert probe is not None and probe.status_code == 200  # probes are never shed
    details = [(response.json()["detail"], seconds) for status, seconds, response in answers if status == 503]
    assert {status for status, _, _ in answers} <= {200, 503}
    assert all(response.headers["Retry-After"] == str(RETRY_AFTER_S) for status, _, response in answers
               if status == 503)
    by_concurrency = [d for d, _ in details if d.startswith("server busy (concurrency)")]
    predicted = [seconds for d, seconds in details if "texts queued ahead" in d]
    assert by_concurrency and "limit_concurrency=10" in by_concurrency[0], details
    # 10 requests of 8 long texts are far more than 300 ms of work: later ones are refused on arrival, from the
    # measured cost, not after sitting out the 300 ms
    assert predicted, details
    counted = {reason: after.get(reason, 0) - before.get(reason, 0) for reason in after}
    assert counted.get("concurrency") == len(by_concurrency)
    assert sum(counted.values()) == len(details), (counted, details)
