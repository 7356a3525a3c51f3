"""Benchmarks for `frontwire predict`: throughput against the raw predictor, threads vs processes, and memory.

    # throughput: raw Predictor.predict vs the engine (threads, processes) on the same paragraphs, one run
    python bench/bench_batch.py throughput --articles 100 --classifier DIR --ner DIR
    # memory: RSS sampled while the engine runs over the shared archive repeated to --paragraphs
    python bench/bench_batch.py memory --paragraphs 20000 --classifier DIR --ner none
    python bench/bench_batch.py memory --paragraphs 1000000 --stub-model   # everything but the model

`--stub-model` swaps the predictor for a constant one, so a million paragraphs fit in minutes on 2 cores: it
measures what the engine itself holds (reading, splitting, chunks, shards, merge), not the model, whose own
memory does not grow with the input (one chunk at a time). Results print as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from frontwire.paragraphs import split_text
from frontwire.paths import shared_dir
from frontwire.serve.batch import runners
from frontwire.serve.batch.engine import run
from frontwire.serve.batch.models import ResolvedModel, resolve_models
from frontwire.serve.batch.settings import load_predict_config


def archive_records(limit: int | None = None) -> list[dict]:
    shared = shared_dir()
    if shared is None:
        sys.exit("needs ../shared/data/archive_articles.jsonl.gz")
    with gzip.open(shared / "data" / "archive_articles.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, limit)]


def repeated(records: list[dict], paragraphs: int) -> Iterator[dict]:
    """The archive over and over, with fresh ids, until `paragraphs` paragraphs have been produced."""
    produced = 0
    for copy in itertools.count():
        for record in records:
            if produced >= paragraphs:
                return
            produced += len(split_text(record["text"]))
            yield {**record, "id": f"{record['id']}~{copy}"}


class StubPredictor:
    """Constant predictions with the real output shape: isolates the engine's own memory and speed."""

    def __init__(self, labels: list[str]) -> None:
        self.scores = dict.fromkeys(labels, 0.5)

    def predict(self, texts, tasks=("classifier", "ner")):
        return [{"labels": [], "scores": self.scores, "entities": [{"start": 0, "end": 1, "label": "LOC",
                                                                    "score": 0.9, "text": t[:1]}]} for t in texts]


class RssSampler(threading.Thread):
    """Peak and timeline of this process's RSS plus its children's (worker processes), every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        me, start = psutil.Process(), time.perf_counter()
        while not self.stop.wait(0.5):
            rss = me.memory_info().rss
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a worker may exit between listing and reading
                    rss += child.memory_info().rss
            self.samples.append((round(time.perf_counter() - start, 1), round(rss / 2**20, 1)))


def resolve(args) -> tuple[ResolvedModel | None, ResolvedModel | None]:
    cfg = load_predict_config(None, [f"models.classifier={json.dumps(args.classifier)}"] * bool(args.classifier)
                              + [f"models.ner={json.dumps(args.ner)}"] * bool(args.ner))
    return resolve_models(cfg.models)


def throughput(args) -> dict:
    from frontwire.modeling import set_threads

    records = archive_records(args.articles)
    texts = [p.text for r in records for p in split_text(r["text"])]
    classifier, ner = resolve(args)
    spec = runners.PredictorSpec(classifier.directory if classifier else None, ner.directory if ner else None)
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    source = work / "archive.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    set_threads(args.workers)
    predictor = spec.build()
    predictor.predict(texts[:32], tasks=spec.tasks)  # warm-up: first calls allocate
    results: dict = {"paragraphs": len(texts), "articles": len(records), "tasks": list(spec.tasks), "runs": [],
                     "chunk_size": args.chunk_size, "workers": args.workers, "loadavg_start": os.getloadavg()}
    for rnd in range(args.rounds):
        # the order alternates between rounds, so a drift in the machine's other load does not favour one side
        order = ["raw", *args.parallelism] if rnd % 2 == 0 else [*args.parallelism, "raw"]
        for what in order:
            if what == "raw":
                start = time.perf_counter()
                predictor.predict(texts, tasks=spec.tasks)  # the raw bar: all texts in memory, one call
                results["runs"].append({"round": rnd, "what": "raw_predictor", "paragraphs_per_s":
                                        round(len(texts) / (time.perf_counter() - start), 2)})
                continue
            # worker processes need several chunks in flight to keep every worker busy
            chunk = args.chunk_size if what == "threads" else args.process_chunk_size
            cfg = load_predict_config(None, [f"runtime.parallelism={what}", f"runtime.workers={args.workers}",
                                             f"runtime.chunk_size={chunk}"])
            result = run([source], work / f"{what}-{rnd}.parquet", cfg, models=(classifier, ner), progress=False)
            results["runs"].append({"round": rnd, "what": f"engine_{what}", "paragraphs_per_s":
                                    result.paragraphs_per_s, "wall_s": result.seconds, "chunk_size": chunk})
    for what in {r["what"] for r in results["runs"]}:
        rates = [r["paragraphs_per_s"] for r in results["runs"] if r["what"] == what]
        results[f"mean_{what}"] = round(sum(rates) / len(rates), 2)
    shutil.rmtree(work, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()  # other work on the machine makes single runs noisy
    for parallelism in args.parallelism:
        results[f"ratio_{parallelism}_vs_raw"] = round(results[f"mean_engine_{parallelism}"]
                                                       / results["mean_raw_predictor"], 3)
    return results


def memory(args) -> dict:
    records = archive_records()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    source = work / "repeated.jsonl.gz"
    with gzip.open(source, "wt", encoding="utf-8", compresslevel=1) as handle:
        for record in repeated(records, args.paragraphs):
            handle.write(json.dumps(record) + "\n")
    if args.stub_model:
        from frontwire.schema import load_schema

        labels = load_schema().topic_names
        runners.PredictorSpec.build = lambda self: StubPredictor(labels)  # type: ignore[method-assign]
        fake = Path(tempfile.mkdtemp())
        models = (None, ResolvedModel("ner", fake, "stub"))
    else:
        models = resolve(args)
    cfg = load_predict_config(None, [f"runtime.parallelism={args.parallelism[0]}", f"runtime.workers={args.workers}",
                                     f"runtime.chunk_size={args.chunk_size}", f"output.shard_size={args.shard_size}"])
    sampler = RssSampler()
    sampler.start()
    result = run([source], work / "out.parquet", cfg, models=models, progress=args.progress)
    sampler.stop.set()
    sampler.join()
    rss = [mb for _, mb in sampler.samples]
    input_bytes, output_bytes = source.stat().st_size, (work / "out.parquet").stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    tenth = max(1, len(rss) // 10)
    return {"paragraphs": result.paragraphs, "documents": result.documents, "stub_model": args.stub_model,
            "paragraphs_per_s": result.paragraphs_per_s, "wall_s": result.seconds,
            "input_bytes": input_bytes, "output_bytes": output_bytes,
            "peak_rss_mb": max(rss), "rss_mb_first_10pct_max": max(rss[:tenth]),
            "rss_mb_last_10pct_max": max(rss[-tenth:]), "rss_mb_median": sorted(rss)[len(rss) // 2],
            "samples": len(rss), "timeline_every_10pct": rss[::tenth]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["throughput", "memory"])
    parser.add_argument("--classifier", help="model dir / models:/ URI / none (default: registry champion)")
    parser.add_argument("--ner", help="model dir / models:/ URI / none (none: classifier only)")
    parser.add_argument("--articles", type=int, default=100, help="throughput: first N archive articles")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paragraphs", type=int, default=20_000, help="memory: paragraphs to generate")
    parser.add_argument("--stub-model", action="store_true")
    parser.add_argument("--parallelism", nargs="+", default=["threads", "processes"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--process-chunk-size", type=int, default=128)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    print(json.dumps(throughput(args) if args.mode == "throughput" else memory(args), indent=1))


if __name__ == "__main__":
    main()
