"""The Spark job on local[2] writes the same rows and errors as the local engine for the same input."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from frontwire.serve.batch.engine import run
from frontwire.serve.batch.models import from_directory
from frontwire.serve.batch.settings import load_predict_config

#: CI sets this so that a missing pyspark fails the run instead of skipping the Spark test.
REQUIRE_SPARK_ENV = "FRONTWIRE_REQUIRE_SPARK"


@pytest.fixture(scope="module")
def spark():
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        if os.environ.get(REQUIRE_SPARK_ENV) == "1":
            pytest.fail(f"{REQUIRE_SPARK_ENV}=1 but pyspark is not installed (pip install -e '.[spark]')")
        pytest.skip("pyspark not installed (pip install -e '.[spark]')")
    # executors must run this venv's python (with frontwire installed), bound to loopback
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # py4j logs its shutdown at interpreter exit, after pytest has closed the streams logging points at
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = (SparkSession.builder.master("local[2]").appName("frontwire-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()


def test_spark_output_equals_local_engine(spark, tiny_models, tmp_path: Path) -> None:
    from frontwire.serve.batch.spark import run_spark

    records = [{"id": f"d{i}", "text": f"Missiles hit Kharkiv ({i}).\n\nZelenskyy spoke in Kyiv.\n\nAd {i}"}
               for i in range(6)]
    lines = [json.dumps(r) for r in records[:3]] + ["{oops", "", json.dumps({"id": "x"})] + \
        [json.dumps(r) for r in records[3:]] + [json.dumps({"id": "h", "html": "<p>Odesa</p><p>Footer</p>"})]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    models = (from_directory("classifier", tiny_models.classifier_dir), from_directory("ner", tiny_models.ner_dir))
    cfg = load_predict_config()

    local = run([source], tmp_path / "local.parquet", cfg, models=models, progress=False)
    counts = run_spark(spark, [str(source)], str(tmp_path / "spark.parquet"), cfg, models=models)

    assert counts == {"documents": local.documents, "paragraphs": local.paragraphs, "errors": local.errors} \
        == {"documents": 7, "paragraphs": 20, "errors": 2}
    local_table, spark_table = pq.read_table(tmp_path / "local.parquet"), pq.read_table(tmp_path / "spark.parquet")
    assert spark_table.schema == local_table.schema

    def key(row: dict) -> tuple:
        return row["doc_id"], row["paragraph_index"]

    assert sorted(spark_table.to_pylist(), key=key) == sorted(local_table.to_pylist(), key=key)
    spark_errors = [json.loads(line) for part in sorted((tmp_path / "spark.parquet.errors").glob("part-*.json"))
                    for line in part.read_text(encoding="utf-8").splitlines()]
    local_errors = [json.loads(line) for line in Path(local.errors_file).read_text(encoding="utf-8").splitlines()]
    assert sorted(spark_errors, key=lambda e: e["line"]) == local_errors
    assert [e["line"] for e in local_errors] == [4, 6]


def test_spark_reads_a_folder_file_by_file_with_shipped_models_as_the_local_engine(spark, tiny_models,
                                                                                 tmp_path: Path) -> None:
    """A folder input: each file numbered and named on its own (a glob character in a name included), overlong
    lines reported as the local engine reports them, the one documented difference (bytes that are not UTF-8);
    models shipped to executors although both folders have the same name (as two registry versions "1" do)."""
    import gzip
    import shutil

    import pyarrow as pa

    from frontwire.serve.batch.spark import run_spark

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    good = [json.dumps({"id": f"a{i}", "text": f"Shelling near Bakhmut ({i}).\n\nNATO met in Brussels."})
            for i in range(3)]
    overlong = json.dumps({"id": "long", "text": "Kyiv " * 120})
    (folder / "a.jsonl").write_bytes("\n".join([good[0], good[1]]).encode() + b'\n{"id": "bad", "text": "\xff"}\n'
                                     + f"{overlong}\n{good[2]}\n".encode())
    (folder / "sub" / "b[1].jsonl.gz").write_bytes(gzip.compress(
        "\n".join(json.dumps({"id": f"b{i}", "text": f"Sanctions on Moscow ({i})."}) for i in range(2)).encode()))
    pq.write_table(pa.table({"id": ["p1", None], "text": ["Drones over Odesa.", "Lavrov met Wang Yi."]}),
                   folder / "c.parquet")
    (folder / "notes.xz").write_bytes(b"\xfd7zXZ\x00")  # no Hadoop codec: an error row, not lines of garbage
    same_name = []
    for kind, source in (("classifier", tiny_models.classifier_dir), ("ner", tiny_models.ner_dir)):
        shutil.copytree(source, tmp_path / kind / "1")
        same_name.append(from_directory(kind, tmp_path / kind / "1"))
    models = tuple(same_name)
    cfg = load_predict_config(None, ["input.max_record_bytes=400"])

    local = run([folder], tmp_path / "local.parquet", cfg, models=models, progress=False)
    counts = run_spark(spark, [str(folder)], str(tmp_path / "spark.parquet"), cfg, models=models, ship_models=True)

    assert (local.documents, local.paragraphs, local.errors) == (7, 10, 3)
    # Hadoop hands Python the undecodable line with U+FFFD: a document there, an error row here
    assert counts == {"documents": 8, "paragraphs": 11, "errors": 2}

    def key(row: dict) -> tuple:
        return row["source"], row["paragraph_index"]

    spark_rows = sorted(pq.read_table(tmp_path / "spark.parquet").to_pylist(), key=key)
    undecodable = [row for row in spark_rows if row["doc_id"] == "bad"]
    assert [(row["source"], row["text"]) for row in undecodable] == [(f"{folder}/a.jsonl:3", "\ufffd")]
    assert [r for r in spark_rows if r["doc_id"] != "bad"] == sorted(
        pq.read_table(tmp_path / "local.parquet").to_pylist(), key=key)
    assert {row["source"] for row in spark_rows} >= {f"{folder}/a.jsonl:5", f"{folder}/sub/b[1].jsonl.gz:2",
                                                     f"{folder}/c.parquet:2"}
    assert all(row["scores"] and row["classifier_version"] == models[0].version for row in spark_rows)
    spark_errors = [json.loads(line) for part in sorted((tmp_path / "spark.parquet.errors").glob("part-*.json"))
                    for line in part.read_text(encoding="utf-8").splitlines()]
    local_errors = [json.loads(line) for line in Path(local.errors_file).read_text(encoding="utf-8").splitlines()]

    def where(errors: list[dict]) -> list[tuple]:
        return sorted((e["path"], e["line"], e["member"], e["reason"].split(":")[0].split(" (")[0]) for e in errors)

    assert where(spark_errors) == [(f"{folder}/a.jsonl", 4, None, "line is longer than max_record_bytes=400"),
                                   (f"{folder}/notes.xz", None, None, "not a Spark input")]
    assert where(local_errors)[:2] == [(f"{folder}/a.jsonl", 3, None, "not UTF-8"),
                                       (f"{folder}/a.jsonl", 4, None, "line is longer than max_record_bytes=400")]
