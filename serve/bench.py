"""`frontwire bench`: throughput of the plain Hugging Face way vs frontwire's backends, same paragraphs, one run.

Baselines: NER is `pipeline("token-classification", aggregation_strategy="simple")` on the same model dir.
The classifier's mean-pool head is not a `pipeline` model, so its baseline is what a pipeline does for one:
a per-text torch loop padded to max_length. Each frontwire run is split into tokenize / forward / rest
(padding, pooling, decoding). The F1 part scores every variant on labelled test paragraphs.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frontwire.paragraphs import split_text
from frontwire.paths import sample_export, shared_dir

log = logging.getLogger(__name__)


def bench_paragraphs(count: int, seed: int = 7) -> tuple[list[str], str]:
    """`count` real paragraphs: from the shared article archive, else the packaged sample export."""
    shared = shared_dir()
    archive = shared / "data" / "archive_articles.jsonl.gz" if shared else None
    if archive is not None and archive.is_file():
        with gzip.open(archive, "rt", encoding="utf-8") as handle:
            texts = [p.text for line in handle if line.strip() for p in split_text(json.loads(line)["text"])]
        source = str(archive)
    else:
        texts = [task["data"]["text"] for task in json.loads(sample_export().read_text(encoding="utf-8"))]
        source = str(sample_export())
    random.Random(seed).shuffle(texts)
    while len(texts) < count:  # the sample is small: repeat it rather than time fewer paragraphs
        texts = texts + texts
    return texts[:count], source


class Timed:
    """Wraps a Forward and adds up the seconds spent in it."""

    def __init__(self, forward: Callable) -> None:
        self.forward, self.seconds = forward, 0.0

    def __call__(self, ids, mask):
        started = time.perf_counter()
        out = self.forward(ids, mask)
        self.seconds += time.perf_counter() - started
        return out


def _timed_run(model, texts: Sequence[str], call: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    from frontwire.windows import encode_windows

    started = time.perf_counter()
    encode_windows(model.tokenizer, texts, model.meta.max_length, model.meta.stride)
    tokenize = time.perf_counter() - started
    model.forward = Timed(model.forward)
    started = time.perf_counter()
    result = call()
    total = time.perf_counter() - started
    forward, model.forward = model.forward.seconds, model.forward.forward
    return result, {"seconds": total, "tokenize": tokenize, "forward": forward,
                    "rest": max(0.0, total - tokenize - forward)}


def naive_classifier(model_dir: Path, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """Per-text torch loop padded to max_length: the classifier's stand-in for a plain pipeline."""
    import torch

    from frontwire.modeling import ModelMeta, load_classifier, load_tokenizer

    meta = ModelMeta.load(model_dir)
    tokenizer, module = load_tokenizer(model_dir), load_classifier(model_dir, meta)
    scores = []
    started = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, padding="max_length", truncation=True, max_length=meta.max_length,
                                return_tensors="pt")
            logits = module(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])["logits"]
            scores.append(torch.sigmoid(logits)[0].numpy())
    return np.stack(scores), time.perf_counter() - started


def pipeline_ner(model_dir: Path, texts: Sequence[str]) -> tuple[list[list[tuple[int, int, str]]], float]:
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(model_dir), aggregation_strategy="simple", device=-1)
    tagger(list(texts[:2]))  # warm-up
    started = time.perf_counter()
    outputs = tagger(list(texts))
    seconds = time.perf_counter() - started
    return [[(int(e["start"]), int(e["end"]), e["entity_group"]) for e in out] for out in outputs], seconds


def _row(name: str, count: int, tokens: int, timing: dict[str, float], baseline: float | None) -> dict[str, Any]:
    row = {"variant": name, "paragraphs_per_s": count / timing["seconds"], "tokens_per_s": tokens / timing["seconds"],
           **timing}
    row["speedup"] = baseline / timing["seconds"] if baseline else 1.0
    return row


def _print_table(kind: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{kind}: {'variant':<22}{'para/s':>9}{'tok/s':>10}{'x base':>8}{'tokenize':>10}{'forward':>9}{'rest':>8}")
    for r in rows:
        split = "".join(f"{100 * r[k] / r['seconds']:>8.0f}%" if k in r else f"{'-':>9}"
                        for k in ("tokenize", "forward", "rest"))
        print(f"{'':>{len(kind) + 2}}{r['variant']:<22}{r['paragraphs_per_s']:>9.1f}{r['tokens_per_s']:>10.0f}"
              f"{r['speedup']:>7.2f}x{split}")


def throughput(kind: str, model_dir: Path, texts: list[str], backends: list[str], threads: int,
               rounds: int = 2) -> list[dict]:
    """Every variant timed `rounds` times, taking turns, best time kept: on a shared machine a load spike
    during one variant's only run would otherwise decide its ratio."""
    from frontwire.predictor import EntityModel, TopicModel
    from frontwire.serve.settings import load_serve_config

    loader = TopicModel if kind == "classifier" else EntityModel
    probe = loader.load(model_dir, "cpu", "torch", threads)
    tokens = sum(len(ids) for ids in probe.tokenizer(texts, add_special_tokens=True)["input_ids"])
    runners: dict[str, Callable[[], dict[str, float]]] = {}
    if kind == "classifier":
        runners[f"naive loop (pad {probe.meta.max_length})"] = lambda: {"seconds": naive_classifier(model_dir,
                                                                                                    texts)[1]}
    else:
        runners["hf pipeline"] = lambda: {"seconds": pipeline_ner(model_dir, texts)[1]}
    for backend in backends:
        model = loader.load(model_dir, "cpu", backend, threads)
        rows = load_serve_config().batching.forward_size(backend)  # the server's rows per forward pass
        if kind == "classifier":
            def call(m=model, batch=texts, size=rows) -> Any:
                return [m.decode(row) for row in m.scores(batch, size)]
        else:
            def call(m=model, batch=texts, size=rows) -> Any:
                return m.entities(batch, size)
        call(batch=texts[:16])  # warm-up: first calls allocate
        runners[f"frontwire {backend}"] = lambda m=model, c=call: _timed_run(m, texts, c)[1]
        # one text per call, what a server without dynamic batching does: the ratio to the row above is the most
        # batching can buy on this machine
        runners[f"  {backend}, 1 per call"] = lambda m=model, c=call: _timed_run(
            m, texts, lambda: [c(batch=[text]) for text in texts])[1]
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for name, runner in runners.items():
            timing = runner()
            if name not in best or timing["seconds"] < best[name]["seconds"]:
                best[name] = timing
    baseline = next(iter(best.values()))["seconds"]
    rows = [_row(name, len(texts), tokens, timing, baseline) for name, timing in best.items()]
    _print_table(kind, rows)
    return rows


def accuracy(kind: str, model_dir: Path, backends: list[str], limit: int, threads: int) -> dict[str, Any]:
    """Micro-F1 of every variant on labelled test paragraphs, and agreement with frontwire torch."""
    from frontwire.metrics import entity_metrics, multilabel_indicator, topic_metrics
    from frontwire.predictor import EntityModel, TopicModel
    from frontwire.schema import load_schema
    from frontwire.train.data import load_split_data

    test = load_split_data(None, load_schema()).test[:limit]
    texts = [r.text for r in test]
    outputs: dict[str, Any] = {}
    if kind == "classifier":
        labels = TopicModel.load(model_dir, "cpu", "torch", threads)
        scores, _ = naive_classifier(model_dir, texts)
        outputs["naive loop"] = [labels.decode(row) for row in scores]
        for backend in backends:
            model = TopicModel.load(model_dir, "cpu", backend, threads)
            outputs[backend] = [model.decode(row) for row in model.scores(texts)]
        gold = multilabel_indicator([r.labels for r in test], labels.meta.labels)

        def f1(pred, ref=gold):
            return topic_metrics(ref, multilabel_indicator(pred, labels.meta.labels), labels.meta.labels)["micro"]["f1"]
    else:
        outputs["hf pipeline"], _ = pipeline_ner(model_dir, texts)
        for backend in backends:
            found = EntityModel.load(model_dir, "cpu", backend, threads).entities(texts)
            outputs[backend] = [[(e["start"], e["end"], e["label"]) for e in spans] for spans in found]
        gold_spans = [[(e.start, e.end, e.label) for e in r.entities] for r in test]

        def f1(pred, ref=gold_spans):
            return entity_metrics(texts, ref, pred)["micro"]["f1"]
    reference = outputs.get("torch")
    result = {"paragraphs": len(texts), "variants": {}}
    for name, pred in outputs.items():
        entry = {"f1": f1(pred)}
        if reference is not None:
            entry["identical_to_torch"] = sum(a == b for a, b in zip(pred, reference, strict=True)) / len(texts)
            entry["f1_vs_torch"] = f1(pred, reference) if kind == "ner" else f1(
                pred, multilabel_indicator(reference, labels.meta.labels))
        result["variants"][name] = entry
    print(f"\n{kind} accuracy on {len(texts)} labelled test paragraphs (micro-F1 vs gold; agreement with torch):")
    for name, entry in result["variants"].items():
        extra = "".join(f"  {k}={v:.4f}" for k, v in entry.items() if k != "f1")
        print(f"  {name:<14} f1={entry['f1']:.4f}{extra}")
    return result


def run_bench(classifier: str | None, ner: str | None, count: int, threads: int | None, backends: list[str],
              accuracy_limit: int, rounds: int = 2) -> dict[str, Any]:
    from frontwire.model_sources import ModelSourcesSection
    from frontwire.serve.onnx_backend import default_threads

    threads = threads or default_threads()
    defaults = ModelSourcesSection()
    texts, source = bench_paragraphs(count)
    print(f"{len(texts)} paragraphs from {source}, {threads} threads, backends {backends}, best of {rounds} rounds")
    result: dict[str, Any] = {"paragraphs": len(texts), "source": source, "threads": threads, "rounds": rounds,
                              "models": {}}
    for kind, wanted in (("classifier", classifier), ("ner", ner)):
        ref = defaults.resolve(kind, wanted)
        if ref is None:
            print(f"\n{kind}: no model (give --{kind} or register one); skipped")
            continue
        entry: dict[str, Any] = {"model": ref.describe(),
                                 "throughput": throughput(kind, ref.model_dir, texts, backends, threads, rounds)}
        if accuracy_limit:
            try:
                entry["accuracy"] = accuracy(kind, ref.model_dir, backends, accuracy_limit, threads)
            except (OSError, ValueError) as err:  # no labelled data here: throughput still stands
                print(f"\n{kind}: accuracy skipped: {err}")
        result["models"][kind] = entry
    return result
