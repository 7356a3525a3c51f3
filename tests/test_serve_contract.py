"""schemathesis (a real property-based API fuzzer) against a live `frontwire serve`, from its own /openapi.json.

Two servers with the tiny models, one with a bearer token and one without: every check schemathesis has, on
requests it generates from the served schema (valid and invalid), must pass — what the schema allows is
accepted, what it forbids is refused, every status, header and body is the one declared, and nothing is a
5xx. The run is bounded in time (`--max-time`; the fuzzing phase repeats until it is spent), and the
requests it really sent are counted from its HAR report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_serve import GRACEFUL, TOKEN, overrides, server_env

from frontwire.serve.loadtest import start_server, stop_server

SECONDS_PER_RUN = 14
# Smaller limits than the defaults keep the fuzzer's longest generated texts cheap to predict on 2 cores; the
# served schema carries whatever the config says, so the same contract is checked.
LIMITS = ("limits.max_texts=16", "limits.max_chars=1500", "limits.max_article_chars=3000",
          "server.log_requests=false")
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
# 413 is how this API refuses a body over a size limit (the schema states each limit as maxItems/maxLength).
# /admin/reload takes free-form model sources: whether a directory or registry name holds a model cannot be
# written in a schema, so a well-formed source that names no model is a declared 422, for that route only.
CONFIG = f"""
[checks.negative_data_rejection]
expected-statuses = {json.dumps(REJECTED)}

[[operations]]
include-path = "/admin/reload"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422"]
"""


@pytest.fixture(scope="module")
def servers(tiny_models, tmp_path_factory):
    """(name, port, token) for a server with a token and one without, started side by side."""
    logs = tmp_path_factory.mktemp("contract")
    models = ["--classifier", str(tiny_models.classifier_dir), "--ner", str(tiny_models.ner_dir), "--backend",
              "torch", *overrides(*LIMITS, "models.warmup=false")]
    wanted = {"token": TOKEN, "open": ""}
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(start_server, models, {**server_env(tiny_models), "FRONTWIRE_API_TOKEN": token},
                                     120.0, logs / f"{name}.log") for name, token in wanted.items()}
        started = {name: future.result() for name, future in futures.items()}
    yield {name: (port, wanted[name]) for name, (_, port) in started.items()}
    for process, _ in started.values():
        assert stop_server(process) in GRACEFUL


def run_schemathesis(port: int, token: str, workdir: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    har = workdir / "requests.har"
    exe = Path(sys.executable).with_name("schemathesis")
    command = [str(exe), "--config-file", str(config), "run", f"http://127.0.0.1:{port}/openapi.json",
               "--checks", "all", "--max-time", str(SECONDS_PER_RUN), "--workers", "1", "--seed", "18",
               "--generation-database", "none", "--report", "har", "--report-har-path", str(har), "--no-color",
               "--request-timeout", "30"]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS_PER_RUN + 60, cwd=workdir)
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    return result, entries


def test_contract_holds_with_and_without_a_token(servers, tmp_path: Path) -> None:
    sent: dict[str, Counter] = {}
    for name, (port, token) in servers.items():
        workdir = tmp_path / name
        workdir.mkdir()
        result, entries = run_schemathesis(port, token, workdir)
        report = result.stdout[-6000:] + result.stderr[-2000:]
        assert result.returncode == 0, f"schemathesis found failures against the server ({name}):\n{report}"
        statuses = Counter(entry["response"]["status"] for entry in entries)
        assert not [s for s in statuses if s >= 500], f"{name}: 5xx answers {statuses}"
        paths = {entry["request"]["url"].split(str(port), 1)[1].split("?")[0] for entry in entries}
        assert {"/v1/predict", "/v1/articles", "/admin/reload", "/v1/models"} <= paths
        sent[name] = statuses
        print(f"schemathesis ({name} server): {len(entries)} requests, statuses {dict(sorted(statuses.items()))}")
    # the runs exercised what each contract says: open -> reload refused with 403, token -> 401 without it
    assert sent["open"][403] > 0 and sent["open"][401] == 0
    assert sent["token"][401] > 0 and sent["token"][403] == 0
    assert all(counts[200] > 0 and counts[422] > 0 for counts in sent.values())
    total = sum(sum(counts.values()) for counts in sent.values())
    assert total >= 500, f"only {total} generated requests were sent"


def test_schema_says_what_the_config_and_the_token_say(servers) -> None:
    import httpx

    for name, (port, token) in servers.items():
        schema = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()
        texts = schema["components"]["schemas"]["PredictRequest"]["properties"]["texts"]
        assert texts["maxItems"] == 16 and texts["items"]["maxLength"] == 1500 and texts["items"]["minLength"] == 1
        predict = schema["paths"]["/v1/predict"]["post"]
        assert {"413", "415", "422", "503"} <= set(predict["responses"])
        assert predict["responses"]["503"]["headers"]["Retry-After"]["required"] is True
        reload = schema["paths"]["/admin/reload"]["post"]["responses"]
        if token:
            assert predict["security"] == [{"bearer": []}] and "401" in predict["responses"] and "403" not in reload
        else:
            assert "security" not in predict and "securitySchemes" not in schema["components"]
            assert "401" not in predict["responses"] and "403" in reload
        # a text the schema allows is accepted: the old 422 on {"texts": [""]} came from a rule the schema hid
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        empty = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"texts": [""]}, headers=headers, timeout=30)
        assert empty.status_code == 422 and "texts[0] is empty" in empty.json()["detail"], name
