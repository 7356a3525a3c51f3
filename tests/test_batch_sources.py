"""Batch inputs: every format is read from real files, streaming, and every unreadable record is reported."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from frontwire.serve.batch.sources import Position, ReadOptions, SourceDoc, SourceError, iter_inputs

ARTICLES = [
    {"id": "a1", "text": "Missiles hit Kyiv overnight.\n\nAir defence shot down 20 drones."},
    {"id": "a2", "text": "Talks in Istanbul resumed on Tuesday."},
    {"id": "a3", "html": "<html><body><nav>Home | World</nav><p>Sanctions widened.</p></body></html>"},
]


def jsonl_bytes(records: list[object]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def read(*paths: Path, **options) -> tuple[list[SourceDoc], list[SourceError]]:
    items = list(iter_inputs(list(paths), ReadOptions(**options)))
    return [i for i in items if isinstance(i, SourceDoc)], [i for i in items if isinstance(i, SourceError)]


@pytest.mark.parametrize("suffix, compress", [
    ("jsonl", lambda b: b), ("jsonl.gz", gzip.compress), ("jsonl.bz2", bz2.compress), ("jsonl.xz", lzma.compress),
    ("jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b)),
])
def test_jsonl_any_compression_reports_bad_lines_by_number(tmp_path: Path, suffix: str, compress) -> None:
    lines = [*ARTICLES, b"{broken", {"text": "no id"}, b"", {"id": "bin", "text": 3}, b'{"id": "x", "text": "\xff"}']
    path = tmp_path / f"archive.{suffix}"
    path.write_bytes(compress(jsonl_bytes(lines)))
    docs, errors = read(path)
    assert [d.doc_id for d in docs] == ["a1", "a2", "a3"]
    assert docs[0].text == ARTICLES[0]["text"] and docs[0].source == f"{path}:1"
    assert docs[2].text == "Home | World\n\nSanctions widened."  # HTML field → block paragraphs, chrome kept
    assert [(e.line, e.path) for e in errors] == [(4, str(path)), (5, str(path)), (7, str(path)), (8, str(path))]
    assert "invalid JSON" in errors[0].reason and "no 'id'" in errors[1].reason
    assert "no string 'text'" in errors[2].reason and "not UTF-8" in errors[3].reason


def test_format_is_told_by_content_when_the_name_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "dump-2024"
    path.write_bytes(gzip.compress(jsonl_bytes(ARTICLES[:2])))
    docs, errors = read(path)
    assert [d.doc_id for d in docs] == ["a1", "a2"] and not errors


def test_oversized_line_and_truncated_stream_are_error_rows(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl_bytes([ARTICLES[0], {"id": "huge", "text": "x" * 5000}, ARTICLES[1]]))
    docs, errors = read(path, max_record_bytes=1000)
    assert [d.doc_id for d in docs] == ["a1", "a2"]
    assert errors[0].line == 2 and "max_record_bytes" in errors[0].reason
    truncated = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(jsonl_bytes(ARTICLES * 200))
    truncated.write_bytes(whole[: len(whole) // 2])
    docs, errors = read(truncated)
    assert len(docs) > 0 and len(errors) == 1 and "unreadable from here on" in errors[0].reason
    assert errors[0].line == len(docs) + 1  # the first line that could not be read


def test_csv_and_parquet_text_columns(tmp_path: Path) -> None:
    csv_path = tmp_path / "pages.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([["c1", "Line one.\n\nLine two, quoted \"here\"."], ["c2", ""], ["", "No id."]])
    parquet_path = tmp_path / "pages.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2", "p3"], "body": ["Kyiv.", None, "Lviv."]}), parquet_path,
                   row_group_size=2)
    docs, errors = read(csv_path, parquet_path, text_field="body")
    assert errors[0].reason.startswith("CSV has no 'body' column") and [d.doc_id for d in docs] == ["p1", "p3"]
    docs, errors = read(parquet_path, text_field="body")
    assert [(d.doc_id, d.text, d.line) for d in docs] == [("p1", "Kyiv.", 1), ("p3", "Lviv.", 3)]
    assert errors[0].line == 2 and "has no text" in errors[0].reason
    docs, errors = read(csv_path)
    # no id → its starting line (c1's quoted text spans lines 2-4), still unique
    assert [d.doc_id for d in docs] == ["c1", "c2", "pages.csv:6"]
    assert docs[0].text == 'Line one.\n\nLine two, quoted "here".' and docs[0].line == 2
    no_column = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["z"]}), no_column)
    assert "no 'text' column" in read(no_column)[1][0].reason


def test_directory_tree_in_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("Plain text.\n\nSecond.", encoding="utf-8")
    (root / "b" / "page.html").write_text("<html><body><p>One</p><p>Two</p></body></html>", encoding="utf-8")
    (root / "b" / "doc.json").write_text(json.dumps({"text": "From JSON."}), encoding="utf-8")
    (root / "b" / "many.jsonl.gz").write_bytes(gzip.compress(jsonl_bytes(ARTICLES[:1])))
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    position = Position()
    items = list(iter_inputs([root], ReadOptions(), position))
    ids = [i.doc_id if isinstance(i, SourceDoc) else ("error", Path(i.path).name) for i in items]
    assert ids == ["a.txt", "b/doc.json", "a1", "b/page.html", ("error", "logo.png")]
    assert items[3].text == "One\n\nTwo"
    assert "binary" in items[4].reason
    assert position.done() == position.total == sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> None:
    with tarfile.open(path, mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_archives_are_read_in_place_with_a_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    bomb = b"\x00" * (8 * 2**20)  # 8 MiB of zeros: ~8 KB compressed
    members = {"../escape.txt": b"Escaped?", "/abs/page.html": b"<p>Absolute</p>", "ok/story.txt": b"Story.",
               "bomb.txt": bomb, "pic.png": b"PNG"}
    tgz, zipped = tmp_path / "news.tar.gz", tmp_path / "news.zip"
    _tar(tgz, members)
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert tgz.stat().st_size < 100_000 and zipped.stat().st_size < 100_000
    for path in (tgz, zipped):
        docs, errors = read(path, max_member_bytes=2**20)
        assert [(d.doc_id, d.text) for d in docs][-1] == ("ok/story.txt", "Story.")
        assert {d.doc_id for d in docs} >= {"ok/story.txt"} and "Absolute" in "".join(d.text for d in docs)
        assert {e.member: e.reason.split(" ")[0] for e in errors} == {"bomb.txt": "member", "pic.png": "unsupported"}
        assert docs[0].source.startswith(f"{path}!")
    # nothing was extracted anywhere: names with .. or / are only ids
    assert list(work.iterdir()) == [] and not (tmp_path / "escape.txt").exists() and not Path("/abs/page.html").exists()


def test_warc_html_responses(tmp_path: Path) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for uri, ctype, body in [("https://news.example/a", "text/html; charset=utf-8",
                                  "<html><body><p>Strike on Odesa.</p><footer>© News</footer></body></html>"),
                                 ("https://news.example/logo.png", "image/png", "PNG")]:
            request = io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")
            writer.write_record(writer.create_warc_record(uri, "request", payload=request))
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body.encode()),
                                                          http_headers=http))
    docs, errors = read(path)
    assert [(d.doc_id, d.text) for d in docs] == [("https://news.example/a", "Strike on Odesa.\n\n© News")]
    assert [(e.member, "not HTML" in e.reason) for e in errors] == [("https://news.example/logo.png", True)]


def test_unreadable_inputs_become_error_rows(tmp_path: Path) -> None:
    fake_zip = tmp_path / "broken.zip"
    fake_zip.write_bytes(b"PK\x03\x04 not really a zip")
    locked = tmp_path / "locked.jsonl"
    locked.write_bytes(jsonl_bytes(ARTICLES[:1]))
    locked.chmod(0)
    _, errors = read(fake_zip, locked)
    assert "not a readable zip" in errors[0].reason
    if os.geteuid() != 0:  # root reads anything
        assert "cannot read file" in errors[1].reason
