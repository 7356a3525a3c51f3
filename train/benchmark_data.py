"""Public benchmarks as frontwire data: each is a reader that turns its files into Records plus an ad-hoc
schema built from the data (the trainers only ever see a LabelSchema and a SplitData of Records).

- CoNLL-2003 (`shared/benchmarks/conll2003/{train,valid,test}.txt`, 4 columns, IOB2, `-DOCSTART-` lines) and
  WNUT-17 (2 tab-separated columns): one Record per sentence, text = tokens joined by single spaces,
  entities = character spans from the tags (an I- tag after O or after another type opens an entity).
- Reuters-21578 ModApte (`shared/benchmarks/reuters21578/modapte_{train,test}.jsonl` +
  `modapte_categories.json`): one multi-label Record per article (title + body); dev = a seeded 10 % of
  train (early stopping, thresholds, blend weight), test = the ModApte test set.

Bad lines never stop a run: they are collected as `file:line: reason` and reported with the results.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from frontwire.conll import read_conll
from frontwire.paths import SHARED_ENV, shared_dir
from frontwire.records import LineError, Record
from frontwire.schema import EntityType, LabelSchema, TopicLabel
from frontwire.train.data import SplitData

log = logging.getLogger(__name__)

DEV_FRACTION = 0.1
DEV_SEED = 13


class BenchmarkDataMissing(FileNotFoundError):
    """The benchmark's files are not under shared/benchmarks."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: Literal["ner", "classifier"]
    folder: str  # under <shared>/benchmarks/
    files: dict[str, str]  # role -> file name
    headline: str  # "test_entity_f1" or "test_micro_f1"
    target: float | None
    anchors: tuple[dict[str, Any], ...] = ()
    description: str = ""


BENCHMARKS: dict[str, Benchmark] = {
    "conll2003": Benchmark(
        "conll2003",
        "ner",
        "conll2003",
        {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"},
        "test_entity_f1",
        0.90,
        (
            {"model": "bert-base-cased (fine-tuned)", "test_entity_f1": 0.9135},
            {"model": "dslim/bert-base-NER", "test_entity_f1": 0.9259},
        ),
        "CoNLL-2003 English NER (PER, ORG, LOC, MISC); entity-level micro-F1, seqeval strict IOB2",
    ),
    "reuters": Benchmark(
        "reuters",
        "classifier",
        "reuters21578",
        {"train": "modapte_train.jsonl", "test": "modapte_test.jsonl", "categories": "modapte_categories.json"},
        "test_micro_f1",
        0.88,
        ({"model": "linear SVM (TF-IDF)", "test_micro_f1": [0.867, 0.875]}, {"model": "kNN", "test_micro_f1": 0.857}),
        "Reuters-21578 ModApte, 90 categories, multi-label; micro/macro-F1 on the test set",
    ),
    "wnut17": Benchmark(
        "wnut17",
        "ner",
        "wnut17",
        {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"},
        "test_entity_f1",
        None,
        (),
        "WNUT-17 emerging entities (2-column CoNLL); entity-level micro-F1, seqeval strict IOB2",
    ),
}


@dataclass
class LoadedBenchmark:
    benchmark: Benchmark
    schema: LabelSchema
    data: SplitData
    errors: list[LineError] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- locating


def benchmark_dir(name: str) -> Path:
    """`<shared>/benchmarks/<folder>` with every file the benchmark needs, else BenchmarkDataMissing."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[name]
    shared = shared_dir()
    if shared is None:
        raise BenchmarkDataMissing(
            f"benchmark {name!r}: no shared folder found (looked for ../shared beside the checkout and the working "
            f"folder; set {SHARED_ENV} to point at one holding benchmarks/{bench.folder}/)"
        )
    root = shared / "benchmarks" / bench.folder
    missing = [f for f in bench.files.values() if not (root / f).is_file()]
    if missing:
        raise BenchmarkDataMissing(f"benchmark {name!r}: {root} lacks {', '.join(missing)}")
    return root


def ner_schema(name: str, types: Sequence[str], description: str = "") -> LabelSchema:
    """Ad-hoc schema: the data's entity types; one placeholder topic (a schema needs one)."""
    return LabelSchema(
        name=name,
        version=1,
        guidelines=description or None,
        topics=[TopicLabel(name="none", description="placeholder: this NER benchmark has no topics")],
        entities=[EntityType(name=t, description=f"{name} entity type {t}") for t in types],
    )


# --------------------------------------------------------------------------------------------- Reuters


def read_reuters(
    path: Path | str, categories: Sequence[str] | None = None, errors: list[LineError] | None = None
) -> list[Record]:
    """ModApte JSONL (`{"id", "title", "text", "labels"}` per line) → multi-label Records, text = title + body.

    A line that is not JSON, lacks text, or names a category outside `categories` is reported and skipped.
    """
    path = Path(path)
    known = set(categories) if categories is not None else None
    collected: list[LineError] = []
    records: list[Record] = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                title, body = str(row.get("title") or "").strip(), str(row.get("text") or "").strip()
                labels = row.get("labels")
                if row.get("id") is None:
                    raise ValueError("no id")
                if not body and not title:
                    raise ValueError("no title or text")
                if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                    raise ValueError("labels must be a list of strings")
                unknown = sorted(set(labels) - known) if known is not None else []
                if unknown:
                    raise ValueError(f"unknown categories {unknown}")
            except ValueError as err:  # json.JSONDecodeError is a ValueError
                collected.append(LineError(str(path), line_no, str(err)))
                continue
            text = f"{title}\n\n{body}" if title and body else title or body
            records.append(
                Record(
                    id=f"reuters-{row['id']}",
                    text=text,
                    labels=sorted(set(labels)),
                    meta={"file": path.name, "line": line_no, "reuters_id": row["id"]},
                )
            )
    _report(collected, errors)
    return records


def carve_dev(
    records: Sequence[Record], fraction: float = DEV_FRACTION, seed: int = DEV_SEED
) -> tuple[list[Record], list[Record]]:
    """(train, dev): the `fraction` of records whose seeded id hash is lowest; file order kept in both.

    Depends only on the ids and the seed, so the same article always lands on the same side.
    """

    def key(record: Record) -> str:
        return hashlib.sha256(f"{seed}:{record.id}".encode()).hexdigest()

    size = round(len(records) * fraction)
    dev_ids = {r.id for r in sorted(records, key=key)[:size]}
    return [r for r in records if r.id not in dev_ids], [r for r in records if r.id in dev_ids]


def topic_schema(name: str, categories: Sequence[str], description: str = "") -> LabelSchema:
    """Ad-hoc schema: the categories as topics; one placeholder entity type (a schema needs one)."""
    return LabelSchema(
        name=name,
        version=1,
        guidelines=description or None,
        topics=[TopicLabel(name=c, description=f"{name} category {c}") for c in categories],
        entities=[EntityType(name="MISC", description="placeholder: this classification benchmark has no entities")],
    )


# --------------------------------------------------------------------------------------------- loading


def load_benchmark(name: str, limit: int | None = None) -> LoadedBenchmark:
    """Read a benchmark into an ad-hoc schema and train/dev/test Records (`limit`: cap per split)."""
    root = benchmark_dir(name)
    bench = BENCHMARKS[name]
    errors: list[LineError] = []
    if bench.kind == "ner":
        parts = {role: read_conll(root / bench.files[role], errors) for role in ("train", "dev", "test")}
        types = sorted({s.label for records in parts.values() for r in records for s in r.entities})
        if not types:
            raise ValueError(f"benchmark {name!r}: no entity tags found under {root}")
        schema = ner_schema(name, types, bench.description)
        data = SplitData(parts["train"], parts["dev"], parts["test"], str(root))
    else:
        categories = _read_categories(root / bench.files["categories"])
        train_all = read_reuters(root / bench.files["train"], categories, errors)
        test = read_reuters(root / bench.files["test"], categories, errors)
        train, dev = carve_dev(train_all)
        schema = topic_schema(name, categories, bench.description)
        data = SplitData(train, dev, test, str(root))
    if errors:
        log.warning("benchmark=%s skipped_lines=%d (first: %s)", name, len(errors), format_error(errors[0]))
    return LoadedBenchmark(bench, schema, data.limited(limit), errors)


def _read_categories(path: Path) -> list[str]:
    categories = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValueError(f"{path}: expected a JSON list of category names")
    return sorted(set(categories))


def format_error(error: LineError) -> str:
    return f"{error.path}:{error.line}: {error.reason}"


def _report(collected: list[LineError], errors: list[LineError] | None) -> None:
    if errors is not None:
        errors.extend(collected)
    else:
        for error in collected:
            log.warning("skipped %s", format_error(error))
