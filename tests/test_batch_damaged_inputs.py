"""Damaged and unusual batch inputs: each becomes error rows naming where, never a crash or a silent loss."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from frontwire.serve.batch.sources import ReadOptions, SourceDoc, SourceError, iter_inputs

ARTICLES = [{"id": f"a{i}", "text": f"Missiles hit Kyiv overnight ({i}).\n\nAir defence shot down drones."}
            for i in range(3)]


def jsonl_bytes(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def read(*paths: Path) -> tuple[list[SourceDoc], list[SourceError]]:
    items = list(iter_inputs(list(paths), ReadOptions()))
    return [i for i in items if isinstance(i, SourceDoc)], [i for i in items if isinstance(i, SourceError)]


def test_corrupt_deflate_data_in_gzip_is_an_error_row_and_the_next_input_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "joined.jsonl.gz"
    # a good gzip member, then one whose deflate data is garbage: zlib.error, which is not an OSError
    path.write_bytes(gzip.compress(jsonl_bytes(ARTICLES[:2])) + b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff")
    after = tmp_path / "next.jsonl"
    after.write_bytes(jsonl_bytes(ARTICLES[2:]))
    docs, errors = read(path, after)
    assert [d.doc_id for d in docs] == ["a0", "a1", "a2"]
    assert [(e.path, e.line) for e in errors] == [(str(path), 3)]
    assert errors[0].reason.startswith("unreadable from here on (error:")


def test_a_zip_member_with_corrupt_deflate_data_is_an_error_row(tmp_path: Path) -> None:
    path = tmp_path / "pages.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("broken.txt", "Shelling near Kharkiv. " * 200)
        archive.writestr("fine.txt", "Talks in Geneva.")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("broken.txt")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's compressed bytes
    data[start:start + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    docs, errors = read(path)
    assert [(d.doc_id, d.text) for d in docs] == [("fine.txt", "Talks in Geneva.")]
    assert [(e.member, e.reason.split(" (")[0]) for e in errors] == [("broken.txt", "unreadable member")]


def test_a_truncated_zstd_file_is_reported_where_it_ends(tmp_path: Path) -> None:
    compressor = zstandard.ZstdCompressor()
    lines = [{"id": f"z{i}", "text": f"Front line report {i}: {os.urandom(24).hex()}"} for i in range(400)]
    # two frames, the second cut in half: the first frame's documents, then one error row
    whole = compressor.compress(jsonl_bytes(lines[:200])) + compressor.compress(jsonl_bytes(lines[200:]))
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    docs, errors = read(path)
    assert 200 <= len(docs) < 400 and [d.doc_id for d in docs] == [f"z{i}" for i in range(len(docs))]
    assert [(e.line, e.reason) for e in errors] == [
        (len(docs) + 1, "unreadable from here on (EOFError: zstd stream ends inside a frame (truncated file))")]
    whole_path = tmp_path / "whole.jsonl.zst"
    whole_path.write_bytes(whole)
    assert [d.doc_id for d in read(whole_path)[0]] == [line["id"] for line in lines]


def test_a_csv_row_with_bytes_that_are_not_utf8_costs_only_that_row(tmp_path: Path) -> None:
    path = tmp_path / "pages.csv"
    path.write_bytes(b"id,text\nc1,good one\nc2,bad \xff byte\nc3,after\n")
    docs, errors = read(path)
    assert [(d.doc_id, d.text, d.line) for d in docs] == [("c1", "good one", 2), ("c3", "after", 4)]
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [(3, "not UTF-8")]


def test_a_corrupt_parquet_row_group_is_an_error_row_after_the_good_rows(tmp_path: Path) -> None:
    path = tmp_path / "pages.parquet"
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(1200)], "text": [f"Text {i}." for i in range(1200)]}),
                   path, row_group_size=600, use_dictionary=False)
    page = pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[page:page + 12] = b"\xff" * 12  # the second row group's page header
    path.write_bytes(bytes(data))
    docs, errors = read(path)
    assert len(docs) >= 512 and [d.doc_id for d in docs] == [f"p{i}" for i in range(len(docs))]
    assert len(errors) == 1 and errors[0].line == len(docs) + 1
    assert errors[0].reason.startswith(f"unreadable from row {len(docs) + 1} on")


def test_warc_resource_and_conversion_records_are_documents(tmp_path: Path) -> None:
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for uri, record_type, content_type, body in [
            ("https://news.example/a", "resource", "text/html", b"<html><body><p>Strike on Odesa.</p></body></html>"),
            ("https://news.example/b", "conversion", "text/plain", b"Sanctions on banks widened."),
            ("https://news.example/logo.png", "resource", "image/png", b"\x89PNG"),
        ]:
            writer.write_record(writer.create_warc_record(uri, record_type, payload=io.BytesIO(body),
                                                          warc_content_type=content_type))
        writer.write_record(writer.create_warcinfo_record("crawl.warc.gz", {"software": "test"}))
    docs, errors = read(path)
    assert [(d.doc_id, d.text) for d in docs] == [("https://news.example/a", "Strike on Odesa."),
                                                  ("https://news.example/b", "Sanctions on banks widened.")]
    assert [(e.member, e.reason.split(" (")[0]) for e in errors] == [
        ("https://news.example/logo.png", "resource is not HTML or plain text")]


def test_symlinked_folders_are_error_rows_not_followed(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    (root / "real").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "real" / "x.txt").write_text("Real folder.", encoding="utf-8")
    (elsewhere / "y.txt").write_text("Linked folder.", encoding="utf-8")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)  # followed, this would never end
    docs, errors = read(root)
    assert [(d.doc_id, d.text) for d in docs] == [("real/x.txt", "Real folder.")]
    assert [(e.path, e.reason.split(" (")[0]) for e in errors] == [
        (str(root / "linked"), "symlinked folder"), (str(root / "real" / "loop"), "symlinked folder")]
    assert "pass it as an input of its own" in errors[0].reason


def test_garbage_after_a_good_zstd_frame_keeps_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "tail.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(jsonl_bytes(ARTICLES)) + b"\0" * 8)
    docs, errors = read(path)
    assert [d.doc_id for d in docs] == ["a0", "a1", "a2"]
    assert [(e.line, e.reason.split(" (")[0]) for e in errors] == [(4, "unreadable from here on")]


def test_parquet_strings_that_are_not_utf8_cost_only_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "pages.parquet"
    texts = pa.array([b"Good one.", b"bad \xff byte", b"After."], type=pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["p1", "p2", "p3"], "text": texts}), path)  # as a writer that does not check
    docs, errors = read(path)
    assert [(d.doc_id, d.text) for d in docs] == [("p1", "Good one."), ("p3", "After.")]
    assert [(e.line, e.reason.split(":")[0]) for e in errors] == [(2, "not UTF-8")]


def test_a_lone_surrogate_becomes_one_replacement_character_and_the_rows_can_be_written(tmp_path: Path) -> None:
    from frontwire.serve.batch.engine import Unit, units_of

    path = tmp_path / "cut.jsonl"
    path.write_text('{"id": "x\\udc80", "text": "A cut emoji \\ud83d here."}\n', encoding="utf-8")
    units = list(units_of(iter_inputs([path], ReadOptions())))
    assert [(u.doc_id, u.text, u.end - u.start) for u in units if isinstance(u, Unit)] == [
        ("x\ufffd", "A cut emoji \ufffd here.", len("A cut emoji \ufffd here."))]
    pq.write_table(pa.Table.from_pylist([{"doc_id": u.doc_id, "text": u.text} for u in units]), tmp_path / "o.parquet")


def test_a_crawlers_own_files_in_a_warc_are_not_documents(tmp_path: Path) -> None:
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "wget.warc"
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        writer.write_record(writer.create_warc_record(
            "metadata://gnu.org/software/wget/warc/wget.log", "resource", payload=io.BytesIO(b"Resolving..."),
            warc_content_type="text/plain"))
    assert read(path) == ([], [])


def test_a_byte_order_mark_opens_a_jsonl_file_and_json_files_take_the_id_field(tmp_path: Path) -> None:
    marked = tmp_path / "windows.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + jsonl_bytes(ARTICLES[:2]))
    docs, errors = read(marked)
    assert [d.doc_id for d in docs] == ["a0", "a1"] and not errors
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "one.json").write_text(json.dumps({"uid": "u1", "text": "Talks in Geneva."}), encoding="utf-8")
    items = list(iter_inputs([folder], ReadOptions(id_field="uid")))
    assert [(i.doc_id, i.text) for i in items] == [("u1", "Talks in Geneva.")]
