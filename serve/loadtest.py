"""`frontwire loadtest`: throughput and latency of a real `frontwire serve` over loopback HTTP.

For each mode (dynamic batching on, then off) a server is started as a subprocess on a free 127.0.0.1 port;
at each concurrency level, N clients each send one real paragraph per request, back to back, over a
keep-alive connection, until the level's request count or time budget runs out. The client is a minimal
HTTP/1.1 writer/reader on asyncio streams: on 2 cores, a heavier client would steal the server's CPU and
measure itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.serve.bench import bench_paragraphs

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(args: list[str], env: dict[str, str] | None = None, timeout: float = 300.0,
                 log_path: Path | None = None) -> tuple[subprocess.Popen, int]:
    """`frontwire serve` on a free loopback port, once /readyz answers 200 (or raise with the log's tail)."""
    port = free_port()
    exe = Path(sys.executable).with_name("frontwire")
    command = [str(exe) if exe.exists() else "frontwire", "serve", "--host", HOST, "--port", str(port), *args]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = Path(log_path).read_text(errors="replace")[-3000:] if log_path else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise TimeoutError(f"server not ready after {timeout:.0f}s")


def stop_server(process: subprocess.Popen, timeout: float = 60.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes,
               headers: str = "") -> tuple[int, bytes]:
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{headers}"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def metric_total(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


async def drive(port: int, clients: int, bodies: list[bytes], max_requests: int, max_seconds: float,
                headers: str = "") -> tuple[list[float], int, float]:
    """(latencies of 200s, non-200 count, wall seconds) for `clients` back-to-back clients."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while issued < max_requests and time.perf_counter() < deadline:
                body = bodies[issued % len(bodies)]
                issued += 1
                started = time.perf_counter()
                status, _ = await post(reader, writer, "/v1/predict", body, headers)
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def summarize(clients: int, latencies: list[float], errors: int, seconds: float, batches: float) -> dict[str, Any]:
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {"clients": clients, "requests": len(latencies), "errors": errors, "seconds": seconds,
            "throughput_rps": len(latencies) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_batch": len(latencies) / max(1.0, batches)}


def run_loadtest(classifier: str | None, ner: str | None, backend: str, levels: list[int], max_requests: int,
                 max_seconds: float, log_dir: Path | None = None, server_overrides: Sequence[str] = (),
                 rounds: int = 2, text_chars: int = 5000) -> dict[str, Any]:
    """Both servers run side by side and the modes take turns (`rounds` times per level): on a shared machine
    whose load drifts, back-to-back blocks would credit the drift to whichever mode ran second."""
    texts, source = bench_paragraphs(512)
    bodies = [json.dumps({"texts": [text[:text_chars]]}).encode() for text in texts]
    print(f"load test: {len(bodies)} real paragraphs (first {text_chars} chars) from {source}, one per request, "
          f"backend {backend}, "
          f"levels {levels}, at most {max_requests} requests / {max_seconds:.0f}s per level and mode")
    sources = [*(["--classifier", classifier] if classifier else []), *(["--ner", ner] if ner else [])]
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    results: dict[str, list[dict]] = {"on": [], "off": []}
    try:
        for mode in results:
            args = [*sources, "--backend", backend, "--batching" if mode == "on" else "--no-batching",
                    "--set", "server.log_requests=false", "--set", "batching.max_queue=100000",
                    *(arg for item in server_overrides for arg in ("--set", item))]
            log_path = (log_dir / f"loadtest-server-{mode}.log") if log_dir else None
            servers[mode] = start_server(args, env={"FRONTWIRE_API_TOKEN": ""}, log_path=log_path)
        for clients in levels:
            runs: dict[str, list] = {mode: [[], 0, 0.0, 0.0] for mode in results}
            for _ in range(rounds):
                for mode, (_, port) in servers.items():
                    count_before = metric_total(port, "frontwire_batch_size_count")
                    latencies, errors, seconds = asyncio.run(
                        drive(port, clients, bodies, max_requests // rounds, max_seconds / rounds))
                    run = runs[mode]
                    run[0] += latencies
                    run[1] += errors
                    run[2] += seconds
                    run[3] += metric_total(port, "frontwire_batch_size_count") - count_before
            for mode, run in runs.items():
                row = summarize(clients, *run)
                results[mode].append(row)
                print(f"  batching {mode:<3} clients {clients:>3}: {row['throughput_rps']:7.1f} req/s  "
                      f"p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                      f"mean batch {row['mean_batch']:5.1f}  n={row['requests']} errors={row['errors']}")
    finally:
        for process, _ in servers.values():
            stop_server(process)
    ratios = {on["clients"]: on["throughput_rps"] / off["throughput_rps"]
              for on, off in zip(results["on"], results["off"], strict=True) if off["throughput_rps"]}
    for clients, ratio in ratios.items():
        print(f"  throughput batching on/off at {clients} clients: {ratio:.2f}x")
    return {"source": source, "backend": backend, "rounds": rounds, "text_chars": text_chars, "results": results,
            "on_off_ratio": ratios}
