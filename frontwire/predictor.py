"""The one inference path: texts → topic scores/labels and entity spans.

Training-time evaluation, `frontwire evaluate`, the HTTP server, batch inference and the MLflow pyfunc
model all call this module, so a model behaves the same everywhere.

Speed on CPU comes from the windowing in frontwire.windows (one tokenizer call, overlapping windows for long
texts, length-sorted batches padded to their longest) and from the ONNX backends (frontwire.serve.onnx_backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frontwire.modeling import (
    ModelMeta,
    load_classifier,
    load_tagger,
    load_tokenizer,
    pick_device,
    set_threads,
)
from frontwire.windows import Forward, encode_windows, run_windows


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def decode_topics(scores: Sequence[float], labels: Sequence[str], thresholds: dict[str, float],
                  exclusive: Sequence[str]) -> list[str]:
    """Labels at or over their threshold; an exclusive label (boilerplate) and the others never mix:
    the side whose best margin over its threshold is larger wins."""
    chosen = [label for label, score in zip(labels, scores, strict=True) if score >= thresholds.get(label, 0.5)]
    margins = {label: float(score) - thresholds.get(label, 0.5) for label, score in zip(labels, scores, strict=True)}
    for label in exclusive:
        if label in chosen and len(chosen) > 1:
            others = [c for c in chosen if c != label]
            chosen = [label] if margins[label] >= max(margins[o] for o in others) else others
    return chosen


def decode_entities(text: str, words: list[tuple[int, int, np.ndarray]], tags: Sequence[str]) -> list[dict[str, Any]]:
    """Word-level BIO decoding. `words` are (char_start, char_end, tag probabilities), in text order.

    Spans always cover whole words, so a model can never cut "Zelenskyy" into "Zelensky".
    I-X after O or after another type opens a new X entity (lenient, as seqeval's default counts it).
    """
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for start, end, probs in words:
        tag_index = int(np.argmax(probs))
        tag = tags[tag_index]
        prob = float(probs[tag_index])
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == kind:
            current["end"] = end
            current["probs"].append(prob)
            continue
        if current is not None:
            entities.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"start": start, "end": end, "label": kind, "probs": [prob]}
    if current is not None:
        entities.append(current)
    return [
        {"start": e["start"], "end": e["end"], "label": e["label"], "score": round(float(np.mean(e["probs"])), 4),
         "text": text[e["start"] : e["end"]]}
        for e in entities
    ]


class TorchForward:
    """Runs a loaded torch module on numpy batches; the seam where other backends (ONNX) plug in."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(ids).to(self.device),
                             attention_mask=torch.from_numpy(mask).to(self.device))
            logits = out["logits"] if isinstance(out, dict) else out.logits
            return logits.float().cpu().numpy()


BACKENDS = ("torch", "onnx", "onnx-int8")


def resolve_backend(backend: str | None, device: str = "auto") -> str:
    """`auto` (or None): torch where the models run on a GPU, else ONNX Runtime fp32, which gives torch's
    labels and spans (checked on the shared test split) ~1.3x faster on CPU."""
    if backend in (None, "auto"):
        return "torch" if pick_device(device).type == "cuda" else "onnx"
    return backend


def load_forward(model_dir: Path, meta: ModelMeta, device: str = "auto", backend: str = "torch",
                 threads: int | None = None) -> Forward:
    """The model's forward pass on a backend: torch, or ONNX Runtime fp32/int8 (exported once, cached)."""
    backend = resolve_backend(backend, device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "torch":
        if threads:
            set_threads(threads)
        module = load_classifier(Path(model_dir), meta) if meta.kind == "classifier" else load_tagger(Path(model_dir))
        return TorchForward(module, pick_device(device))
    from frontwire.serve.onnx_backend import onnx_forward, precision_for

    return onnx_forward(Path(model_dir), precision_for(backend), threads)


class TopicModel:
    def __init__(self, meta: ModelMeta, tokenizer, forward: Forward) -> None:
        if meta.kind != "classifier":
            raise ValueError(f"model {meta.name!r} is a {meta.kind} model, not a classifier")
        self.meta, self.tokenizer, self.forward = meta, tokenizer, forward
        self.thresholds = dict(meta.thresholds or {})
        self.lexical = None  # optional TF-IDF scorer blended in (see ModelMeta.lexical_weight)

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", backend: str = "torch",
             threads: int | None = None) -> TopicModel:
        meta = ModelMeta.load(Path(model_dir))
        model = cls(meta, load_tokenizer(model_dir), load_forward(model_dir, meta, device, backend, threads))
        if meta.lexical_weight > 0:
            # scikit-learn is imported only for a model that blends it (servers of plain models start faster)
            from frontwire.lexical import LexicalScorer

            model.lexical = LexicalScorer.load(Path(model_dir), meta.labels)
        return model

    def scores(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Sigmoid scores [len(texts), n_labels]; a long text's windows are max-pooled (a topic anywhere counts)."""
        windows = encode_windows(self.tokenizer, texts, self.meta.max_length, self.meta.stride)
        logits = run_windows(windows, self.forward, self.tokenizer.pad_token_id, batch_size)
        pooled = np.full((len(texts), len(self.meta.labels)), -np.inf, dtype=np.float32)
        for window_logits, text_index in zip(logits, windows.text_index, strict=True):
            pooled[text_index] = np.maximum(pooled[text_index], window_logits)
        scores = sigmoid(pooled)
        if self.lexical is not None and self.meta.lexical_weight > 0:
            weight = self.meta.lexical_weight
            scores = (1.0 - weight) * scores + weight * self.lexical.scores(texts)
        return scores

    def decode(self, scores: Sequence[float], thresholds: dict[str, float] | None = None) -> list[str]:
        return decode_topics(scores, self.meta.labels, thresholds or self.thresholds,
                             self.meta.schema_.exclusive_topics)


class EntityModel:
    def __init__(self, meta: ModelMeta, tokenizer, forward: Forward) -> None:
        if meta.kind != "ner":
            raise ValueError(f"model {meta.name!r} is a {meta.kind} model, not an NER model")
        self.meta, self.tokenizer, self.forward = meta, tokenizer, forward

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", backend: str = "torch",
             threads: int | None = None) -> EntityModel:
        meta = ModelMeta.load(Path(model_dir))
        return cls(meta, load_tokenizer(model_dir), load_forward(model_dir, meta, device, backend, threads))

    def entities(self, texts: Sequence[str], batch_size: int = 32) -> list[list[dict[str, Any]]]:
        windows = encode_windows(self.tokenizer, texts, self.meta.max_length, self.meta.stride)
        logits = run_windows(windows, self.forward, self.tokenizer.pad_token_id, batch_size)
        # word start char -> (distance from its window's edge, start, end, probs); the most central copy wins
        per_text: list[dict[int, tuple[int, int, int, np.ndarray]]] = [{} for _ in texts]
        for window_index, window_logits in enumerate(logits):
            text_index = windows.text_index[window_index]
            offsets = windows.offsets[window_index]
            word_ids = windows.word_ids[window_index]
            probs = softmax(window_logits)
            size = len(word_ids)
            first_token: dict[int, int] = {}
            word_end: dict[int, int] = {}
            for token, word in enumerate(word_ids):
                if word is None:
                    continue
                first_token.setdefault(word, token)
                word_end[word] = offsets[token][1]
            for word, token in first_token.items():
                start = offsets[token][0]
                centrality = min(token, size - 1 - token)
                seen = per_text[text_index].get(start)
                # a word cut by a window edge ends early in that window: it ends where its longest copy does
                end = word_end[word] if seen is None else max(seen[2], word_end[word])
                if seen is None or centrality > seen[0]:
                    per_text[text_index][start] = (centrality, start, end, probs[token])
                else:
                    per_text[text_index][start] = (seen[0], start, end, seen[3])
        results = []
        for text, words in zip(texts, per_text, strict=True):
            ordered: list[tuple[int, int, np.ndarray]] = []
            for _, start, end, probs in sorted(words.values(), key=lambda w: w[1]):
                if ordered and start < ordered[-1][1]:
                    # a word cut by a window edge shows up twice: keep the head, extend it to the full word
                    head = ordered[-1]
                    ordered[-1] = (head[0], max(head[1], end), head[2])
                    continue
                ordered.append((start, end, probs))
            results.append(decode_entities(text, ordered, self.meta.labels))
        return results


class Predictor:
    """Classifier and/or NER model behind one `predict(texts)` call."""

    def __init__(self, classifier_dir: Path | None = None, ner_dir: Path | None = None, device: str = "auto",
                 batch_size: int = 32, backend: str = "torch", threads: int | None = None) -> None:
        if classifier_dir is None and ner_dir is None:
            raise ValueError("a predictor needs a classifier and/or an NER model")
        backend = resolve_backend(backend, device)
        self.topics = TopicModel.load(classifier_dir, device, backend, threads) if classifier_dir else None
        self.ner = EntityModel.load(ner_dir, device, backend, threads) if ner_dir else None
        self.backend = backend
        self.batch_size = batch_size

    def predict(self, texts: Sequence[str], tasks: Sequence[str] = ("classifier", "ner")) -> list[dict[str, Any]]:
        predictions: list[dict[str, Any]] = [{} for _ in texts]
        if self.topics is not None and "classifier" in tasks and texts:
            scores = self.topics.scores(texts, self.batch_size)
            for prediction, row in zip(predictions, scores, strict=True):
                prediction["labels"] = self.topics.decode(row)
                prediction["scores"] = {label: round(float(s), 4)
                                        for label, s in zip(self.topics.meta.labels, row, strict=True)}
        if self.ner is not None and "ner" in tasks and texts:
            for prediction, entities in zip(predictions, self.ner.entities(texts, self.batch_size), strict=True):
                prediction["entities"] = entities
        return predictions
