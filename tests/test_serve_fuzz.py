"""Over 1,000 malformed or hostile requests against a real server: not one 5xx, and it is healthy after."""

from __future__ import annotations

import json
import random
import re
import socket
from collections import Counter

import httpx
import pytest
from test_serve import AUTH, GRACEFUL, LIMITS, TOKEN, overrides, server_env

from frontwire.serve.loadtest import start_server, stop_server

HOSTILE = ["\x00", "\x01", "\x07", "\x1b[31m", "\x7f", "\u200b", "\u202e", "\ufeff", "\u0301", "\U0001f680",
           "\U0010ffff", "\ufffd", "ل", "中", "[CLS]", "[SEP]", "[PAD]", "<script>", "'", '"', "\\", "\r\n", " ",
           "Kyiv", "Putin", "drone", "%s", "{}", "\t"]


def hostile_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(HOSTILE) for _ in range(length))


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


def requests(rng: random.Random) -> list[tuple[str, str, dict]]:
    """(method, path, httpx kwargs) for every hostile request, generated from a seed."""
    j = {"content-type": "application/json"}
    out: list[tuple[str, str, dict]] = []
    add = out.append
    for _ in range(200):  # random bytes and broken JSON
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        add(("POST", "/v1/predict", {"content": raw, "headers": j}))
        valid = json.dumps({"texts": [hostile_text(rng, 20)]})
        add(("POST", "/v1/predict", {"content": valid[: rng.randint(0, len(valid) - 1)].encode(), "headers": j}))
    for raw in (b"NaN", b'{"texts": NaN}', b'{"texts": Infinity}', b"{'texts': ['a']}", b'{"texts": ["a"]} x',
                b'{"texts": ["a"],}', b'\xef\xbb\xbf{"texts": ["a"]}', b'{"texts": ["a"]}'.decode().encode("utf-16"),
                b'{"texts": [' + b"9" * 6000 + b"]}", b'{"texts": [1e999]}', b'{"texts": ["a", "a"]}' * 50):
        for path in ("/v1/predict", "/v1/articles", "/admin/reload"):
            add(("POST", path, {"content": raw, "headers": j}))
    for _ in range(150):  # invalid UTF-8 inside otherwise fine JSON
        bad = bytes(rng.choice([0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF, 0xED, 0xA0]) for _ in range(rng.randint(1, 6)))
        add(("POST", "/v1/predict", {"content": b'{"texts": ["ok ' + bad + b'"]}', "headers": j}))
    wrong = [None, 1, -1, 1.5, True, "text", {}, {"a": "b"}, [[]], [["a"]], [None], [1], [{"text": "a"}], [True],
             ["a", None], ["a", ["b"]]]
    for value in wrong:  # wrong types everywhere
        add(("POST", "/v1/predict", {"json": {"texts": value}}))
        add(("POST", "/v1/predict", {"json": {"texts": ["a"], "tasks": value}}))
        add(("POST", "/v1/predict", {"json": value}))
        add(("POST", "/v1/articles", {"json": {"text": value}}))
        add(("POST", "/v1/articles", {"json": {"html": value, "id": value}}))
        if value is not None:  # {"classifier": null} is a valid reload of the configured models
            add(("POST", "/admin/reload", {"json": {"classifier": value}}))
    for _ in range(40):  # sizes over every limit
        add(("POST", "/v1/predict", {"json": {"texts": ["a" * rng.randint(2001, 20000)]}}))
        add(("POST", "/v1/predict", {"json": {"texts": ["a"] * rng.randint(9, 500)}}))
        add(("POST", "/v1/articles", {"json": {"text": "\n\n".join(["Kyiv."] * rng.randint(17, 60))}}))
    for size in (65537, 100_000, 1_000_000):
        add(("POST", "/v1/predict", {"content": b'{"texts": ["' + b"a" * size + b'"]}', "headers": j}))
    for _ in range(160):  # valid shape, hostile content: control characters, RTL, special tokens, emoji
        texts = [hostile_text(rng, rng.randint(1, 60)) for _ in range(rng.randint(1, 3))]
        add(("POST", "/v1/predict", {"json": {"texts": texts}}))
    for escape in ("\\ud800", "\\udfff", "a\\ud83d", "\\ud83d\\ud83d", "\\u0000"):  # lone surrogates, NUL
        add(("POST", "/v1/predict", {"content": b'{"texts": ["' + escape.encode() + b'"]}', "headers": j}))
    for depth in (10, 100, 1000, 5000, 20000):  # deep nesting
        for kind in ("list", "dict"):
            add(("POST", "/v1/predict", {"content": nested(depth, kind).encode(), "headers": j}))
            add(("POST", "/v1/predict", {"content": f'{{"texts": {nested(depth, kind)}}}'.encode(), "headers": j}))
    for html in ("<div>" * 3000 + "x", "<" * 5000, "<html><body>" + "<p>\x00</p>" * 50, "<!-- -->", "<?xml?><a>",
                 "<script>alert(1)</script>", "<p>" + hostile_text(rng, 100), "&#0;&#xD800;&#x110000;&bogus;",
                 "<svg><svg><p>Kyiv</p></svg>", "<table>" * 500):
        add(("POST", "/v1/articles", {"json": {"html": html}}))
    for body in ({"text": "a", "html": "b"}, {}, {"text": "\n\n\n"}, {"id": "x" * 600, "text": "a"},
                 {"text": "a" * 200_001}):
        add(("POST", "/v1/articles", {"json": body}))
    for source in ("../../etc/passwd", "/", "models:/", "models:/x/abc", "models:/@", "models:/a'b@c",
                   "models:/frontwire-classifier@no such alias", "a\x00b", "x" * 5000, "models:/frontwire-ner/999"):
        add(("POST", "/admin/reload", {"json": {"classifier": source}}))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "a/b/c;;", "", "application/json; charset=latin-1", "application/xml"):
        add(("POST", "/v1/predict", {"content": b'{"texts": ["a"]}', "headers": {"content-type": content_type}}))
    for auth in ("", "Bearer", "bearer wrong", "Bearer " + "x" * 8000, "Token " + TOKEN, TOKEN,
                 "Bearer " + TOKEN + "x", "Bearer " + TOKEN[:-1]):
        add(("POST", "/v1/predict", {"json": {"texts": ["a"]}, "headers": {"Authorization": auth}}))
    add(("POST", "/v1/predict", {"json": {"texts": ["a"]}, "headers": {"Authorization": b"Bearer \xff\xfe"}}))
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        for path in ("/v1/predict", "/admin/reload", "/v1/models/../../admin/reload", "/nope", "/v1/predict?x=%00",
                     "/%2e%2e/etc", "/" + "a" * 4000):
            add((method, path, {}))
    return out


@pytest.fixture(scope="module")
def fuzz_server(tiny_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    process, port = start_server(["--classifier", str(tiny_models.classifier_dir), "--ner", str(tiny_models.ner_dir),
                                  "--backend", "onnx", *overrides(*LIMITS)], env=server_env(tiny_models),
                                 log_path=log)
    try:
        yield port, log
    finally:
        assert stop_server(process) in GRACEFUL


def raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # a short body then EOF: the server must not wait forever
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_hostile_requests_never_get_a_5xx(fuzz_server) -> None:
    port, log = fuzz_server
    plan = requests(random.Random(20261127))
    assert len(plan) >= 1000
    statuses: Counter[int] = Counter()
    failures = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=AUTH) as client:
        for method, path, kwargs in plan:
            response = client.request(method, path, **kwargs)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append((method, path, str(kwargs)[:200], response.status_code, response.text[:200]))
    raw = [b"GARBAGE\r\n\r\n", b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"texts\"",
           b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
           b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
           b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
           b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03"]
    for payload in raw:
        reply = raw_exchange(port, payload)
        status = re.match(rb"HTTP/1\.1 (\d{3})", reply)
        assert status is None or int(status.group(1)) < 500, reply[:200]
    assert not failures, failures[:5]
    assert statuses[200] >= 100 and sum(statuses.values()) >= 1000, statuses
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        after = client.post("/v1/predict", json={"texts": ["Russian drones hit Kyiv."]}, headers=AUTH)
        assert after.status_code == 200 and len(after.json()["predictions"]) == 1
        # /readyz answered 503 while the server warmed up; nothing else may have answered 5xx
        assert not re.search(r'route="(?!/readyz")[^"]*",status="5\d\d"', client.get("/metrics").text)
    assert "unhandled_error" not in log.read_text() and "Traceback" not in log.read_text()
