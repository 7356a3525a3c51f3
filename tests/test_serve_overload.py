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

from frontwire.serve.batcher import SHED_REASONS
from frontwire.serve.loadtest import start_server, stop_server

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


async def flood(port: int) -> list[tuple[int, float, httpx.Response]]:
    limits = httpx.Limits(max_connections=FLOOD, max_keepalive_connections=FLOOD)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=60,
                                 limits=limits) as client:
        async def one() -> tuple[int, float, httpx.Response]:
            started = time.perf_counter()
            response = await client.post("/v1/predict", json={"texts": TEXTS_PER_REQUEST})
            return response.status_code, time.perf_counter() - started, response

        return await asyncio.gather(*(one() for _ in range(FLOOD)))


def test_a_flood_is_shed_with_retry_after_and_counted(small_server: int) -> None:
    port = small_server
    base = f"http://127.0.0.1:{port}"
    before = shed_counts(httpx.get(f"{base}/metrics").text)
    answers = asyncio.run(flood(port))

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
    with pytest.raises(ConfigError, match="could never be queued"):
        load_serve_config(None, ["batching.max_queue=4", "limits.max_texts=8"])
