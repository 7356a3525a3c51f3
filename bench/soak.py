"""Soak `frontwire serve` past its capacity (issue #18): does it shed instead of drowning?

A server with its default settings (configs/serve.yaml; a bearer token so /admin/reload is allowed) is
started on loopback. Its capacity is measured first (closed loop, `--clients` back-to-back clients, one real
paragraph per request). Then requests arrive open-loop — Poisson arrivals at `--overload` × that capacity, each
on its own connection, whether or not earlier ones were answered — for `--minutes`, with model reloads
(`POST /admin/reload`; `--reloads`, one half-way by default) spread over it. Reported: every status, the
latency of the accepted (200) answers against `deadline_ms`, the shed counter by reason from /metrics, requests
left unanswered, the server's RSS over time (and before each reload), and a request after the soak.

    python bench/soak.py --minutes 3 --out bench/results/serve_soak_2cores.json
    python bench/soak.py --classifier DIR --ner DIR --backend onnx-int8

Without --classifier/--ner, tiny models (2 training steps) are trained first: a forward pass costs what a
real model's does, which is all a soak measures. Needs psutil (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from frontwire.serve.bench import bench_paragraphs
from frontwire.serve.loadtest import HOST, drive, start_server, stop_server
from frontwire.serve.settings import load_serve_config

TOKEN = "soak-token-0001"
AUTH = f"Authorization: Bearer {TOKEN}\r\n"


def metric_by_label(port: int, name: str, label: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(rf'^{name}{{[^}}]*{label}="([^"]*)"[^}}]*}} (\S+)$', text, re.MULTILINE)
    return {value: float(count) for value, count in found}


def gauge(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE).group(1))


async def one_request(port: int, path: str, body: bytes, timeout: float) -> tuple[int | str, float, dict[str, str]]:
    """(status or "no_answer"/"connect_error", seconds, headers) of one request on a connection of its own."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return "connect_error", time.perf_counter() - started, {}
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{AUTH}"
                     f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

        async def answer() -> tuple[int, dict[str, str]]:
            status = int((await reader.readline()).split()[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            await reader.read()
            return status, headers

        status, headers = await asyncio.wait_for(answer(), timeout)
        return status, time.perf_counter() - started, headers
    except TimeoutError:
        return "no_answer", time.perf_counter() - started, {}
    except (OSError, IndexError, ValueError):
        return "connect_error", time.perf_counter() - started, {}
    finally:
        writer.close()


async def soak(port: int, bodies: list[bytes], rate: float, seconds: float, deadline_s: float, pid: int,
               seed: int, reloads: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    server = psutil.Process(pid)
    rss: list[tuple[float, float]] = []
    results: list[tuple[int | str, float, dict[str, str]]] = []
    reload: list[dict[str, Any]] = []
    tasks: list[asyncio.Task] = []
    started = time.perf_counter()

    async def sample_rss() -> None:
        while time.perf_counter() - started < seconds:
            rss.append((round(time.perf_counter() - started, 1), server.memory_info().rss / 2**20))
            await asyncio.sleep(5)

    async def reload_evenly() -> None:
        for number in range(1, reloads + 1):
            await asyncio.sleep(started + seconds * number / (reloads + 1) - time.perf_counter())
            rss_before = server.memory_info().rss / 2**20
            status, took, _ = await one_request(port, "/admin/reload", b"{}", 300)
            reload.append({"status": status, "seconds": round(took, 2),
                           "at_s": round(time.perf_counter() - started, 1), "rss_mb_before": round(rss_before, 1)})

    async def record(index: int) -> None:
        results.append(await one_request(port, "/v1/predict", bodies[index % len(bodies)], deadline_s + 15))

    side = [asyncio.create_task(sample_rss()), asyncio.create_task(reload_evenly())]
    due = started
    index = 0
    while (now := time.perf_counter()) - started < seconds:
        if now < due:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(record(index)))
        index += 1
        due += rng.exponential(1 / rate)
    offered_seconds = time.perf_counter() - started
    await asyncio.gather(*tasks, *side)
    statuses = Counter(str(status) for status, _, _ in results)
    accepted = np.array([took for status, took, _ in results if status == 200]) * 1000
    shed = [headers for status, _, headers in results if status == 503]
    return {
        "offered_requests": len(results), "offered_seconds": round(offered_seconds, 1),
        "offered_rps": round(len(results) / offered_seconds, 1),
        "statuses": dict(sorted(statuses.items())),
        "goodput_rps": round(int(statuses.get("200", 0)) / offered_seconds, 1),
        "accepted_ms": {"p50": round(float(np.percentile(accepted, 50)), 1),
                        "p99": round(float(np.percentile(accepted, 99)), 1),
                        "max": round(float(accepted.max()), 1)} if len(accepted) else {},
        "shed_503_with_retry_after": sum("retry-after" in headers for headers in shed),
        "shed_503_without_retry_after": sum("retry-after" not in headers for headers in shed),
        "reloads": reload,
        "rss_mb": {"start": round(rss[0][1], 1), "end": round(rss[-1][1], 1),
                   "max": round(max(mb for _, mb in rss), 1), "samples": [(t, round(mb, 1)) for t, mb in rss]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", help="Model dir (default: tiny models trained first).")
    parser.add_argument("--ner", help="Model dir (default: tiny models trained first).")
    parser.add_argument("--backend", default=None, help="Serve backend (default: configs/serve.yaml's).")
    parser.add_argument("--minutes", type=float, default=3.0, help="Length of the open-loop soak.")
    parser.add_argument("--reloads", type=int, default=1, help="Model reloads, spread evenly over the soak.")
    parser.add_argument("--overload", type=float, default=2.0, help="Offered rate as a multiple of capacity.")
    parser.add_argument("--clients", type=int, default=16, help="Closed-loop clients of the capacity run.")
    parser.add_argument("--capacity-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="Write the figures here as JSON too.")
    args = parser.parse_args()

    home = None
    if not (args.classifier and args.ner):
        from tiny_models import train_tiny_models

        home = Path(tempfile.mkdtemp(prefix="frontwire-soak-"))
        outcomes = train_tiny_models(home)
        args.classifier, args.ner = (str(outcomes[kind].model_dir) for kind in ("classifier", "ner"))
    config = load_serve_config(None, [])
    backend = args.backend or config.models.backend
    texts, source = bench_paragraphs(512)
    bodies = [json.dumps({"texts": [text[:config.limits.max_chars]]}).encode() for text in texts]
    server_args = ["--classifier", args.classifier, "--ner", args.ner, "--backend", backend,
                   "--set", "server.log_requests=false"]
    process, port = start_server(server_args, env={"FRONTWIRE_API_TOKEN": TOKEN})
    try:
        latencies, errors, seconds = asyncio.run(drive(port, args.clients, bodies, 10**9, args.capacity_seconds,
                                                       headers=AUTH))
        capacity = len(latencies) / seconds
        print(f"capacity: {capacity:.1f} req/s at {args.clients} closed-loop clients ({errors} non-200)")
        shed_before = metric_by_label(port, "frontwire_shed_total", "reason")
        rate = args.overload * capacity
        print(f"soak: {rate:.1f} req/s offered open-loop for {args.minutes:g} min, {args.reloads} reload(s)")
        figures = asyncio.run(soak(port, bodies, rate, args.minutes * 60, config.batching.deadline_ms / 1000,
                                   process.pid, args.seed, args.reloads))
        shed_after = metric_by_label(port, "frontwire_shed_total", "reason")
        after, _, _ = asyncio.run(one_request(port, "/v1/predict", bodies[0], 30))
        queue_depth = gauge(port, "frontwire_queue_depth")
    finally:
        stop_server(process)
        if home:
            shutil.rmtree(home, ignore_errors=True)
    shed = {reason: int(shed_after.get(reason, 0) - shed_before.get(reason, 0)) for reason in shed_after}
    accepted_p99 = figures["accepted_ms"].get("p99", 0.0)
    result = {
        "paragraphs": source, "backend": backend, "server_settings": "configs/serve.yaml defaults",
        "batching": config.batching.model_dump(), "capacity_rps": round(capacity, 1),
        "capacity_clients": args.clients, "overload": args.overload, "minutes": args.minutes, **figures,
        "shed_by_reason": {reason: count for reason, count in sorted(shed.items()) if count},
        "shed_rate": round(sum(shed.values()) / max(1, figures["offered_requests"]), 3),
        "accepted_p99_under_deadline": accepted_p99 < config.batching.deadline_ms,
        "after_soak": {"status": after, "queue_depth": queue_depth},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
