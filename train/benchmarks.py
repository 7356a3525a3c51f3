"""`frontwire train benchmark`: check the training code on public benchmarks (not part of CI).

The trainers only ever see a LabelSchema and a SplitData of Records, so a benchmark is a reader that turns
its files into Records plus an ad-hoc schema built from the data:

- CoNLL-2003 (`shared/benchmarks/conll2003/{train,valid,test}.txt`, 4 columns, IOB2, `-DOCSTART-` lines) and
  WNUT-17 (2 tab-separated columns): one Record per sentence, text = tokens joined by single spaces,
  entities = character spans from the tags (an I- tag after O or after another type opens an entity).
- Reuters-21578 ModApte (`shared/benchmarks/reuters21578/modapte_{train,test}.jsonl` +
  `modapte_categories.json`): one multi-label Record per article (title + body); dev = a seeded 10 % of
  train (early stopping, thresholds, blend weight), test = the ModApte test set.

Bad lines never stop a run: they are collected as `file:line: reason` and written to the results.
The figures go to a results JSON (one entry per benchmark, merged into an existing file) next to the
published anchors, and the run is logged to MLflow experiment `frontwire-benchmarks`, unregistered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from frontwire.conll import read_conll, token_spans
from frontwire.metrics import entity_metrics
from frontwire.paths import SHARED_ENV, shared_dir, work_dir
from frontwire.records import LineError, Record
from frontwire.schema import EntityType, LabelSchema, TopicLabel
from frontwire.train.data import SplitData

log = logging.getLogger(__name__)

EXPERIMENT = "frontwire-benchmarks"
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
        log.warning("benchmark=%s skipped_lines=%d (first: %s)", name, len(errors), _format(errors[0]))
    return LoadedBenchmark(bench, schema, data.limited(limit), errors)


def _read_categories(path: Path) -> list[str]:
    categories = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ValueError(f"{path}: expected a JSON list of category names")
    return sorted(set(categories))


def _format(error: LineError) -> str:
    return f"{error.path}:{error.line}: {error.reason}"


def _report(collected: list[LineError], errors: list[LineError] | None) -> None:
    if errors is not None:
        errors.extend(collected)
    else:
        for error in collected:
            log.warning("skipped %s", _format(error))


# --------------------------------------------------------------------------------------------- running


def conll_token_metrics(
    records: Sequence[Record], predicted: Sequence[Sequence[tuple[int, int, str]]]
) -> dict[str, Any]:
    """seqeval strict IOB2 over the files' own tokens (as conlleval scores CoNLL): a predicted span tags
    every token it overlaps, its first token B-."""
    gold = [[(s.start, s.end, s.label) for s in r.entities] for r in records]
    return entity_metrics([r.text for r in records], gold, predicted, words=token_spans)


def run_benchmark(
    name: str,
    overrides: Sequence[str] = (),
    limit: int | None = None,
    out: Path | str | None = None,
    config_path: Path | str | None = None,
) -> dict[str, Any]:
    """Train on train, early-stop (and tune thresholds) on dev, score test; write and log the results."""
    import mlflow

    from frontwire.train.settings import load_classifier_config, load_ner_config

    loaded = load_benchmark(name, None)
    bench = loaded.benchmark
    defaults = (f"mlflow.experiment={EXPERIMENT}", "mlflow.register=false")
    if bench.kind == "classifier":
        # the baseline's figures are computed below and logged into the benchmark's own run; the trainer's
        # baseline would also log a sklearn model (pip-requirement inference: a subprocess, minutes on 2 cores)
        defaults = (*defaults, "mlflow.baseline=false")
    loader = load_ner_config if bench.kind == "ner" else load_classifier_config
    config = loader(config_path, (*defaults, *overrides))
    data = loaded.data.limited(limit or config.data.limit)
    run_name = f"benchmark-{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    log.info(
        "benchmark=%s kind=%s train=%d dev=%d test=%d skipped_lines=%d",
        name,
        bench.kind,
        len(data.train),
        len(data.dev),
        len(data.test),
        len(loaded.errors),
    )

    started = time.perf_counter()
    if bench.kind == "ner":
        from frontwire.train.ner import train_ner

        outcome = train_ner(config, loaded.schema, data, run_name=run_name)
    else:
        from frontwire.train.classifier import train_classifier

        outcome = train_classifier(config, loaded.schema, data, run_name=run_name)
    metrics = outcome.metrics
    result: dict[str, Any] = {
        "benchmark": name,
        "kind": bench.kind,
        "description": bench.description,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            **data.describe(),
            "limit": limit or config.data.limit,
            "skipped_lines": len(loaded.errors),
            "skipped_first": [_format(e) for e in loaded.errors[:20]],
        },
        "schema": {"topics": loaded.schema.topic_names, "entities": loaded.schema.entity_names},
        "base_model": config.model.base_model,
        "config": config.model_dump(mode="json"),
        "model_dir": str(outcome.model_dir),
        "run_id": outcome.run_id,
        "tracking_uri": outcome.tracking_uri,
        "experiment": config.mlflow.experiment,
        "training": metrics.get("training"),
        "dev": metrics.get("dev"),
        "test": metrics.get("test"),
        "anchors": list(bench.anchors),
        "target": bench.target,
    }

    if bench.kind == "ner":
        from frontwire.predictor import EntityModel

        model = EntityModel.load(outcome.model_dir, config.training.device, threads=config.training.threads)
        predicted = [
            [(e["start"], e["end"], e["label"]) for e in ents] for ents in model.entities([r.text for r in data.test])
        ]
        result["test_conll_tokens"] = conll_token_metrics(data.test, predicted)
        headline = {
            "test_entity_f1": result["test_conll_tokens"]["micro"]["f1"],
            "test_entity_f1_word_spans": metrics["test"]["micro"]["f1"],
            "test_per_type_f1": {k: v["f1"] for k, v in result["test_conll_tokens"]["per_type"].items()},
            "dev_entity_f1": metrics["dev"]["micro"]["f1"],
        }
    else:
        baseline = metrics.get("baseline")
        if baseline is None:
            from frontwire.train.baseline import train_baseline

            baseline = train_baseline(data, loaded.schema, scorer=outcome.lexical)
        result["baseline"] = {
            "model": "TF-IDF (1-2 grams) + logistic regression, thresholds tuned on dev",
            **{
                split: {"micro_f1": baseline[split]["micro"]["f1"], "macro_f1": baseline[split]["macro"]["f1"]}
                for split in ("dev", "test")
                if split in baseline
            },
        }
        result["lexical_weight"] = metrics.get("lexical_weight")
        headline = {
            "test_micro_f1": metrics["test"]["micro"]["f1"],
            "test_macro_f1": metrics["test"]["macro"]["f1"],
            "dev_micro_f1": metrics["dev"]["micro"]["f1"],
            "dev_macro_f1": metrics["dev"]["macro"]["f1"],
            "baseline_test_micro_f1": result["baseline"].get("test", {}).get("micro_f1"),
            "baseline_test_macro_f1": result["baseline"].get("test", {}).get("macro_f1"),
        }
    value = headline[bench.headline]
    result["headline"] = {
        "metric": bench.headline,
        "value": value,
        "target": bench.target,
        "meets_target": None if bench.target is None else value >= bench.target,
        **headline,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)

    path = write_results(result, out)
    result["results_file"] = str(path)
    with mlflow.start_run(run_id=outcome.run_id):
        mlflow.set_tags({"frontwire.benchmark": name, "frontwire.benchmark.limited": str(limit is not None)})
        mlflow.log_metrics({f"benchmark_{k}": float(v) for k, v in headline.items() if isinstance(v, int | float)})
        mlflow.log_dict(result, f"benchmark_{name}.json")
    log.info("benchmark=%s %s=%.4f seconds=%.0f results=%s", name, bench.headline, value, result["seconds"], path)
    return result


def write_results(result: dict[str, Any], out: Path | str | None = None) -> Path:
    """Merge `result` into the results JSON under its benchmark's name (other benchmarks' entries stay)."""
    path = Path(out) if out else work_dir() / "benchmarks" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            log.warning("results file %s is not JSON: overwriting it", path)
        if not isinstance(existing, dict):
            existing = {}
    existing[result["benchmark"]] = result
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(existing, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
