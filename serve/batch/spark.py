"""The batch job on Apache Spark, for archives that outgrow one machine. Same rows as `frontwire predict`.

Usage (the module is its own spark-submit script; every executor needs frontwire installed, e.g. the
same venv, or a packed env passed with `--archives`):

    export PYSPARK_PYTHON=$PWD/.venv/bin/python SPARK_LOCAL_IP=127.0.0.1   # local runs
    JOB=$(.venv/bin/python -c 'import frontwire.serve.batch.spark as m; print(m.__file__)')
    spark-submit --master local[2] "$JOB" archive.jsonl.gz --output predictions.parquet \\
        [--classifier DIR|models:/NAME@ALIAS|none] [--ner ...] [--set runtime.chunk_size=256]

    # or without spark-submit (starts its own session):  python -m frontwire.serve.batch.spark ... --master local[2]

Inputs are JSONL (gzip/bz2 through Hadoop's codecs) or Parquet files, or folders and globs of them (each
file read and numbered on its own; in a folder, Parquet is told by `.parquet`/`.pq` and JSONL by
`.jsonl`/`.ndjson`, any other file is an error row: the local engine reads those); OUTPUT is a Parquet folder
and OUTPUT.errors a JSON folder with one row per unreadable record. One difference from the local engine:
Hadoop decodes lines before Python sees them, so a JSONL line with bytes that are not UTF-8 is predicted
with U+FFFD in their place, where the local engine makes it an error row. Models resolve exactly as
locally (the registry's `champion`, else newest); on a cluster the model folders are shipped to executors with
`SparkContext.addFile`. Line parsing, paragraph splitting, the predictor and the row layout are the local
engine's own functions, so both engines produce the same rows; the model runs in `mapInArrow`, the Arrow
form of a pandas UDF, because the rows' nested columns (labels, scores, entities) then keep the local
engine's exact Arrow schema.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from frontwire.serve.batch.engine import Chunk, Unit, build_rows, units_of
from frontwire.serve.batch.models import ResolvedModel, job_models
from frontwire.serve.batch.runners import PredictorSpec, release_memory
from frontwire.serve.batch.settings import PredictConfig, load_predict_config
from frontwire.serve.batch.sources import ReadOptions
from frontwire.serve.batch.spark_inputs import input_files, items_of

PARAGRAPH_FIELDS = ("doc_id", "source", "paragraph_index", "start", "end", "text")
ERROR_FIELDS = ("path", "line", "member", "reason")


def spark_type(arrow_type: pa.DataType):
    """The Spark SQL type of an Arrow type used in the row schema."""
    from pyspark.sql import types as T

    if pa.types.is_struct(arrow_type):
        return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in arrow_type])
    if pa.types.is_list(arrow_type):
        return T.ArrayType(spark_type(arrow_type.value_type))
    simple = {pa.string(): T.StringType(), pa.int32(): T.IntegerType(), pa.int64(): T.LongType(),
              pa.float64(): T.DoubleType()}
    return simple[arrow_type]


def _ship(context, model: ResolvedModel, staging: Path) -> Path:
    """A copy of the model folder under a name of this job's own, added to the job's files for the executors.

    Two registry models are both folders named after their version ("1"), SparkFiles keeps one file per
    name, and a second job in the same session may not re-add a name with other content.
    """
    shipped = staging / f"frontwire-{model.kind}-{staging.name.rsplit('-', 1)[-1]}"
    shutil.copytree(model.directory, shipped)
    context.addFile(str(shipped), recursive=True)
    return shipped


def _model_dir(directory: str | Path, shipped: bool) -> Path:
    if not shipped:
        return Path(directory)
    from pyspark import SparkFiles

    return Path(SparkFiles.get(Path(directory).name))


_PREDICTORS: dict[PredictorSpec, Any] = {}


def _predict_batches(batches: Iterator[pa.RecordBatch], spec: PredictorSpec, ship: bool, versions: dict[str, str],
                     schema: pa.Schema, include_text: bool, chunk_size: int) -> Iterator[pa.RecordBatch]:
    """Runs on executors: the local engine's predictor and row builder over Arrow batches of paragraphs."""
    if spec not in _PREDICTORS:  # Python workers are reused across tasks: load the models once per worker
        local = PredictorSpec(_model_dir(spec.classifier_dir, ship) if spec.classifier_dir else None,
                              _model_dir(spec.ner_dir, ship) if spec.ner_dir else None,
                              spec.device, spec.batch_size, spec.backend,
                              threads=int(os.environ.get("FRONTWIRE_SPARK_THREADS", "1")))  # a task per core
        _PREDICTORS[spec] = local.build()
    predictor = _PREDICTORS[spec]
    for batch in batches:
        for offset in range(0, batch.num_rows, chunk_size):
            part = batch.slice(offset, chunk_size).to_pylist()
            chunk = Chunk(0, [Unit(r["doc_id"], r["source"], r["paragraph_index"], r["start"], r["end"], r["text"])
                              for r in part])
            predictions = predictor.predict([u.text for u in chunk.paragraphs], tasks=spec.tasks)
            release_memory()
            yield pa.RecordBatch.from_pylist(build_rows(chunk, predictions, versions, include_text), schema=schema)


def run_spark(spark, inputs: list[str], output: str, cfg: PredictConfig,
              models: tuple[ResolvedModel | None, ResolvedModel | None] | None = None,
              ship_models: bool | None = None) -> dict[str, int]:
    """`ship_models`: copy the model folders to the executors (default: unless the master is local)."""
    job = job_models(cfg.models, models)
    context = spark.sparkContext
    if ship_models is None:
        ship_models = not context.master.startswith("local")  # a local master's executors already see this disk
    spec = job.spec(cfg.runtime)
    spec.prepare()  # ONNX graphs made once, here, and shipped inside the model dirs
    if not ship_models:
        return _run(spark, inputs, output, cfg, job, spec, ship=False)
    staging = Path(tempfile.mkdtemp(prefix="frontwire-spark-"))  # private (0700), gone when the job ends
    try:
        shipped = {f"{m.kind}_dir": _ship(context, m, staging) for m in (job.classifier, job.ner) if m is not None}
        return _run(spark, inputs, output, cfg, job, dataclasses.replace(spec, **shipped), ship=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(spark, inputs: list[str], output: str, cfg: PredictConfig, job, spec: PredictorSpec,
         ship: bool) -> dict[str, int]:
    context, versions = spark.sparkContext, job.versions
    options = ReadOptions(**cfg.input.model_dump())
    schema = job.row_schema(cfg.output.include_text)
    include_text, chunk_size = cfg.output.include_text, cfg.runtime.chunk_size

    files = [file for path in inputs for file in input_files(spark, path)]
    parts = [items_of(uri, display, listed, options, spark) for uri, display, listed in files]
    items = context.union(parts) if parts else context.parallelize([], 1)  # an empty folder: empty output
    units = items.mapPartitions(lambda part: units_of(iter(part))).persist()
    paragraphs = units.filter(lambda u: isinstance(u, Unit)).map(lambda u: tuple(getattr(u, f) for f in
                                                                                ("doc_id", "source", "index",
                                                                                 "start", "end", "text")))
    frame = spark.createDataFrame(paragraphs, "doc_id string, source string, paragraph_index int, start long, "
                                              "end long, text string")

    predict = functools.partial(_predict_batches, spec=spec, ship=ship, versions=versions, schema=schema,
                                include_text=include_text, chunk_size=chunk_size)
    spark_schema = spark_type(pa.struct(list(schema)))
    frame.mapInArrow(predict, spark_schema).write.mode("overwrite").parquet(output)
    errors = units.filter(lambda u: not isinstance(u, Unit)).map(lambda e: tuple(e[f] for f in ERROR_FIELDS))
    spark.createDataFrame(errors, "path string, line long, member string, reason string") \
        .coalesce(1).write.mode("overwrite").option("ignoreNullFields", "false").json(output.rstrip("/") + ".errors")
    written = spark.read.parquet(output)
    counts = {"documents": written.filter("paragraph_index = 0").count(), "paragraphs": written.count(),
              "errors": spark.read.json(output.rstrip("/") + ".errors").count() if errors.count() else 0}
    units.unpersist()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="frontwire batch inference on Spark")
    parser.add_argument("inputs", nargs="+", help="JSONL(.gz/.bz2) or Parquet files, folders or globs of them")
    parser.add_argument("--output", required=True, help="Parquet output folder")
    parser.add_argument("--classifier")
    parser.add_argument("--ner")
    parser.add_argument("--text-field")
    parser.add_argument("--config")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--master", help="only when run without spark-submit, e.g. local[2]")
    args = parser.parse_args(argv)
    flags = {"models.classifier": args.classifier, "models.ner": args.ner, "input.text_field": args.text_field}
    cfg = load_predict_config(args.config, [*args.overrides, *(f"{k}={json.dumps(v)}" for k, v in flags.items()
                                                                if v is not None)])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("frontwire-predict")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        print(json.dumps(run_spark(spark, args.inputs, args.output, cfg), indent=1))
    finally:
        spark.stop()


if __name__ == "__main__":
    # through the importable module, so that executors unpickle its functions by reference and keep their
    # per-worker predictor cache (a function of `__main__` would be shipped by value, cache and all)
    from frontwire.serve.batch.spark import main as module_main

    module_main()
