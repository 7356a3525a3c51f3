"""Learners for bench/active_learning.py: proxies (frozen embeddings, TF-IDF) and the real fine-tune.

Each round object is called as `fit_round(train, unlabeled, tag)` and returns (metrics row, pool scores,
thresholds per label), so the simulation can sample by the production uncertainty score.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from frontwire.metrics import multilabel_indicator, topic_metrics, tune_thresholds
from frontwire.predictor import decode_topics
from frontwire.records import Record
from frontwire.schema import LabelSchema

log = logging.getLogger("active_learning")


# ------------------------------------------------------------------------------------------------ features
def embed(texts: list[str], cache: Path, batch_size: int = 64, threads: int | None = None) -> np.ndarray:
    """L2-normalised mean-pooled all-MiniLM-L6-v2 embeddings [n, 384]; a window-weighted mean for long texts."""
    digest = hashlib.sha256("\n\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    if cache.is_file():
        stored = np.load(cache)
        if str(stored["digest"]) == digest:
            log.info("embeddings from cache %s", cache)
            return stored["x"]
    import torch
    from transformers import AutoModel

    from frontwire.modeling import load_tokenizer, resolve_base_model, set_threads
    from frontwire.windows import encode_windows, length_sorted_batches, pad_batch

    set_threads(threads)
    base = resolve_base_model("default")
    tokenizer, model = load_tokenizer(base), AutoModel.from_pretrained(base).eval()
    windows = encode_windows(tokenizer, texts, 128, 32)  # the classifier's default windows
    pooled = np.zeros((len(windows.input_ids), model.config.hidden_size), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in length_sorted_batches([len(ids) for ids in windows.input_ids], batch_size):
            ids, mask = pad_batch([windows.input_ids[i] for i in batch], tokenizer.pad_token_id)
            hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).float()
            pooled[batch] = ((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)).numpy()
    x = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
    np.add.at(x, np.asarray(windows.text_index), pooled)
    x /= np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-9)
    log.info("embedded paragraphs=%d windows=%d in %.1f s", len(texts), len(windows.input_ids),
             time.perf_counter() - started)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, digest=np.array(digest))
    return x


# ------------------------------------------------------------------------------------------------- learners
class EmbeddingLearner:
    name = "frozen all-MiniLM-L6-v2 mean-pooled embeddings + one-vs-rest logistic regression (C=1, balanced)"

    def __init__(self, features: np.ndarray, n_labels: int, seed: int) -> None:
        self.features, self.n_labels, self.seed = features, n_labels, seed

    def fit_scores(self, train: np.ndarray, y: np.ndarray, score_on: list[np.ndarray]) -> list[np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        outputs = [np.zeros((len(idx), self.n_labels)) for idx in score_on]
        for column in range(self.n_labels):
            target = y[:, column]
            if target.min() == target.max():  # a label absent (or everywhere) in the labeled set: constant score
                for out in outputs:
                    out[:, column] = float(target[0]) if len(target) else 0.0
                continue
            clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=self.seed)
            clf.fit(self.features[train], target)
            for out, idx in zip(outputs, score_on, strict=True):
                if len(idx):
                    out[:, column] = clf.predict_proba(self.features[idx])[:, 1]
        return outputs


class LexicalLearner:
    name = "TF-IDF (1-2 grams) + one-vs-rest logistic regression (frontwire.lexical.LexicalScorer, C=10)"

    def __init__(self, texts: list[str], labels: list[str], seed: int) -> None:
        self.texts, self.labels, self.seed = texts, labels, seed

    def fit_scores(self, train: np.ndarray, y: np.ndarray, score_on: list[np.ndarray]) -> list[np.ndarray]:
        from frontwire.lexical import LexicalScorer

        scorer = LexicalScorer(self.labels, self.seed).fit([self.texts[i] for i in train], y)
        return [scorer.scores([self.texts[i] for i in idx]).astype(np.float64) for idx in score_on]


class TransformerLearner:
    """Each round: `train_classifier` on the labeled paragraphs (packaged config + overrides), pool scored by the
    saved model. Same (labeled, unlabeled) state twice — round 1 of both strategies — trains once."""

    base_overrides = ("mlflow.register=false", "mlflow.baseline=false")

    def __init__(self, records: list[Record], parts: dict[str, list[Record]], schema: LabelSchema, source: str,
                 out: Path, overrides: list[str], keep_models: bool = False) -> None:
        from frontwire.train.settings import load_classifier_config

        self.records, self.parts, self.schema, self.source = records, parts, schema, source
        self.out, self.overrides, self.keep_models = out, list(overrides), keep_models
        probe = load_classifier_config(None, (*self.base_overrides, *self.overrides))  # fail early on a bad --set
        t = probe.training
        self.name = (f"fine-tuned classifier, train_classifier per round (configs/classifier.yaml: epochs={t.epochs} "
                     f"lr={t.learning_rate} batch={t.batch_size}, lexical blend={probe.ensemble.lexical})")
        self._cache: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[dict, np.ndarray, list[float]]] = {}

    def config_overrides(self, model_dir: Path) -> list[str]:
        return [*self.base_overrides, f"output.dir={model_dir}", *self.overrides]

    @staticmethod
    def _key(train, unlabeled) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(sorted(int(i) for i in train)), tuple(int(i) for i in unlabeled)

    def is_cached(self, train, unlabeled) -> bool:
        return self._key(train, unlabeled) in self._cache

    def __call__(self, train: np.ndarray, unlabeled: np.ndarray, tag: str) -> tuple[dict, np.ndarray, list[float]]:
        key = self._key(train, unlabeled)
        if key in self._cache:
            row, scores, thresholds = self._cache[key]
            log.info("%s: same labeled set as %s, reusing its model", tag, row["model"])
            return {**row, "reused": True}, scores, thresholds
        from frontwire.predictor import TopicModel
        from frontwire.train.classifier import train_classifier
        from frontwire.train.data import SplitData
        from frontwire.train.settings import load_classifier_config

        started = time.perf_counter()
        model_dir = (self.out / "models" / tag).resolve()
        config = load_classifier_config(None, tuple(self.config_overrides(model_dir)))
        data = SplitData([self.records[i] for i in train], self.parts["dev"], self.parts["test"], self.source)
        outcome = train_classifier(config, self.schema, data, run_name=f"active-learning-{tag}")
        trained = time.perf_counter()
        labels = self.schema.topic_names
        model = TopicModel.load(outcome.model_dir, config.training.device, threads=config.training.threads)
        scores = (model.scores([self.records[i].text for i in unlabeled]).astype(np.float64) if len(unlabeled)
                  else np.zeros((0, len(labels))))
        thresholds = [float(model.thresholds.get(label, config.thresholds.default)) for label in labels]
        metrics = outcome.metrics
        row = {
            "dev_macro_f1": metrics["dev"]["macro"]["f1"], "dev_micro_f1": metrics["dev"]["micro"]["f1"],
            "test_macro_f1": metrics["test"]["macro"]["f1"], "test_micro_f1": metrics["test"]["micro"]["f1"],
            "lexical_weight": metrics.get("lexical_weight"), "training": metrics.get("training"),
            "thresholds": dict(zip(labels, thresholds, strict=True)), "model": tag,
            "train_seconds": round(trained - started, 1), "round_seconds": round(time.perf_counter() - started, 1),
        }
        del model
        if not self.keep_models:
            shutil.rmtree(outcome.model_dir, ignore_errors=True)
        self._cache[key] = (row, scores, thresholds)
        return row, scores, thresholds


class ProxyRounds:
    """A proxy learner's round: refit, thresholds tuned on dev, production decode, dev/test metrics."""

    def __init__(self, learner, y: np.ndarray, dev: np.ndarray, test: np.ndarray, schema: LabelSchema) -> None:
        self.learner, self.y, self.dev, self.test, self.schema = learner, y, dev, test, schema

    def __call__(self, train: np.ndarray, unlabeled: np.ndarray, tag: str) -> tuple[dict, np.ndarray, list[float]]:
        labels, exclusive, y = self.schema.topic_names, self.schema.exclusive_topics, self.y
        scores_dev, scores_test, scores_pool = self.learner.fit_scores(
            train, y[train], [self.dev, self.test, unlabeled])
        thresholds = tune_thresholds(y[self.dev], scores_dev, labels)
        dev_m = topic_metrics(y[self.dev], decode(scores_dev, labels, thresholds, exclusive), labels)
        test_m = topic_metrics(y[self.test], decode(scores_test, labels, thresholds, exclusive), labels)
        row = {"dev_macro_f1": dev_m["macro"]["f1"], "dev_micro_f1": dev_m["micro"]["f1"],
               "test_macro_f1": test_m["macro"]["f1"], "test_micro_f1": test_m["micro"]["f1"]}
        return row, scores_pool, [thresholds[label] for label in labels]



def decode(scores: np.ndarray, labels: list[str], thresholds: dict[str, float], exclusive: list[str]) -> np.ndarray:
    return multilabel_indicator([decode_topics(row, labels, thresholds, exclusive) for row in scores], labels)
