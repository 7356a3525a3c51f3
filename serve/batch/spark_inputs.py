"""What the Spark job reads: the files an input names, and each file's records as an RDD, numbered and
checked as the local engine numbers and checks them (the parsing functions are the local engine's own)."""

from __future__ import annotations

from typing import Any

from frontwire.serve.batch.formats import inner_name
from frontwire.serve.batch.sources import ReadOptions, SourceDoc, SourceError, parse_json_line
from frontwire.serve.batch.tables import tabular_doc

GLOB_CHARS = "*?[]{}\\"  # Hadoop reads every path given to a reader as a glob


def input_files(spark, path: str) -> list[tuple[str, str, bool]]:
    """(URI to read, name for rows and errors, found in a listing) of each file an input names.

    A file stays as given. A folder or glob becomes its files, one by one and in path order, so that line
    numbers and error rows name the file they come from (Spark would number a folder's lines as one stream);
    files and folders whose names start with `.` or `_` are skipped, as Spark's own readers skip them.
    """
    hadoop = spark.sparkContext._jvm.org.apache.hadoop.fs
    pattern = hadoop.Path(path)
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(pattern)
    if not statuses or (len(statuses) == 1 and statuses[0].isFile() and not any(c in path for c in GLOB_CHARS)):
        return [(path, path, False)]  # one file, or nothing (which Spark's reader then reports)
    found = []
    for status in statuses:
        root = str(status.getPath().toString())
        if not status.isDirectory():
            found.append(root)
            continue
        listing = fs.listFiles(status.getPath(), True)
        while listing.hasNext():
            uri = str(listing.next().getPath().toString())
            if not any(part.startswith((".", "_")) for part in uri[len(root):].split("/")):
                found.append(uri)
    return [(_escaped(uri), uri.removeprefix("file:") if uri.startswith("file:/") else uri, True)
            for uri in sorted(found, key=lambda uri: uri.split("/"))]



def _escaped(uri: str) -> str:
    """A listed file's name as Spark's readers take it: they read every path as a glob."""
    return "".join(f"\\{c}" if c in GLOB_CHARS else c for c in uri)


def _kind(display: str, listed: bool) -> tuple[str | None, str]:
    """The file's kind ("parquet" or "jsonl"), or None and the reason it is not read here."""
    name = display.rsplit("/", 1)[-1].lower()
    if name.endswith((".xz", ".zst", ".zstd", ".tar", ".tgz", ".zip")):
        return None, "not a Spark input (Hadoop reads JSONL plain, .gz or .bz2): read it with `frontwire predict`"
    name = inner_name(name)
    if name.endswith((".parquet", ".pq")):
        return "parquet", ""
    if not listed or name.endswith((".jsonl", ".ndjson")):
        return "jsonl", ""  # a file named on the command line is JSONL whatever its name
    return None, "not a Spark input (JSONL or Parquet): read it with `frontwire predict`"


def items_of(uri: str, display: str, listed: bool, options: ReadOptions, spark) -> Any:
    """The records of one input file as an RDD of SourceDoc/SourceError, numbered as the local engine does."""
    kind, reason = _kind(display, listed)
    if kind is None:
        return spark.sparkContext.parallelize([SourceError(display, reason)], 1)
    if kind == "parquet":
        names = spark.read.parquet(uri).columns
        if options.text_field not in names:
            return spark.sparkContext.parallelize(
                [SourceError(display, f"Parquet has no {options.text_field!r} column (columns: {names})")], 1)
        columns = [c for c in (options.id_field, options.text_field) if c in names]
        rows = spark.read.parquet(uri).select(*columns).rdd.zipWithIndex()
        return rows.map(lambda pair: tabular_doc(pair[0].asDict().get(options.id_field),
                                                  pair[0].asDict().get(options.text_field), display, pair[1] + 1,
                                                  "row"))
    # one partition per file below the block size: zipWithIndex then numbers lines without a job of its own
    lines = spark.sparkContext.textFile(uri, minPartitions=1).zipWithIndex()  # index = line number - 1
    cap = options.max_record_bytes

    def parse(pair: tuple[str, int]) -> SourceDoc | SourceError:
        # Hadoop decodes lines before Python sees them, bytes that are not UTF-8 as U+FFFD: such a line is a
        # document here where the local engine reports it (it cannot be told from a U+FFFD in the text)
        line, index = pair
        if len(line.encode("utf-8")) > cap:
            return SourceError(display, f"line is longer than max_record_bytes={cap}", index + 1)
        return parse_json_line(line, index + 1, display, options)

    return lines.filter(lambda pair: pair[0].strip()).map(parse)
