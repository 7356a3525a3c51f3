"""Active-learning simulation: is uncertainty sampling worth it on frontwire's own data?

    python bench/active_learning.py --out runs/active_learning

The shared Label Studio export is imported with `frontwire.labeling.importer` (stable, article-grouped
splits). The train split is the unlabeled pool; each seed starts from the same-size random set of labeled
paragraphs (200) and buys 200 more per round, either at random or by uncertainty sampling, until the pool is
spent. After each round the learner is refitted and scored on dev (macro-F1, the number the issue asks for)
and on test (thresholds tuned on dev, so the test figure carries no tuning leak).

Learners. The default ones are proxies (a transformer fine-tune per round costs ~30 CPU-minutes here): frozen
all-MiniLM-L6-v2 embeddings, mean-pooled over the model's own 128-token windows and computed ONCE for every
paragraph (cached under --out), plus one-vs-rest logistic regression (`--learner embeddings`, default); or
TF-IDF + logistic regression, `frontwire.lexical.LexicalScorer` (`--learner lexical`). Both use the production
decision code: per-label thresholds tuned on dev by `frontwire.metrics.tune_thresholds`, labels decoded by
`frontwire.predictor.decode_topics` (exclusive boilerplate), and uncertainty measured by
`frontwire.labeling.informativeness.topic_uncertainty` (distance of each score to its label's threshold), the very
score `frontwire labeling suggest` ranks by (its NER-margin part is left out: the learner is topics only).

`--learner transformer` is the real thing (meant for a GPU): every round fine-tunes the production classifier
with `frontwire.train.classifier.train_classifier` on the labeled paragraphs, with the packaged
configs/classifier.yaml defaults except `mlflow.register=false`, `mlflow.baseline=false` and a per-round
`output.dir` under --out/models (plus any `--set key=value`). Dev/test scores are the trainer's own
(`outcome.metrics`: thresholds tuned on dev, TF-IDF blend chosen on dev); the pool is scored by the saved model
(`frontwire.predictor.TopicModel.load(...).scores`) against its saved thresholds for uncertainty sampling. Round 1
(the same random start set for both strategies) is trained once and reused.

Rounds of the two strategies are interleaved and the outputs rewritten after every round, so a run cut short
(`--time-budget`, or killed) still leaves comparable curves.

Outputs in --out: active_learning.json (per seed, per round, and mean ± sd), active_learning.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from frontwire.labeling.importer import import_tasks, read_export_file
from frontwire.labeling.informativeness import topic_uncertainty
from frontwire.labeling.settings import load_labeling_config
from frontwire.metrics import multilabel_indicator, topic_metrics, tune_thresholds
from frontwire.paths import default_export
from frontwire.predictor import decode_topics
from frontwire.records import Record
from frontwire.schema import LabelSchema, load_schema
from frontwire.splits import load_assignment, split_records

log = logging.getLogger("active_learning")
STRATEGIES = ("uncertainty", "random")


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


# ----------------------------------------------------------------------------------------------- simulation
def decode(scores: np.ndarray, labels: list[str], thresholds: dict[str, float], exclusive: list[str]) -> np.ndarray:
    return multilabel_indicator([decode_topics(row, labels, thresholds, exclusive) for row in scores], labels)


class Trajectory:
    """One seed × strategy: labeled/unlabeled state and learning curve, advanced one round at a time."""

    def __init__(self, pool: np.ndarray, strategy: str, seed: int, start: int, step: int, rounds: int | None) -> None:
        self.strategy, self.seed, self.step, self.rounds = strategy, seed, step, rounds
        self.rng = np.random.default_rng(seed)
        order = self.rng.permutation(pool)
        self.labeled, self.unlabeled = list(order[:start]), list(order[start:])
        self.curve: list[dict] = []
        self.done = False

    def advance(self, fit_round, y: np.ndarray, labels: list[str]) -> dict:
        """Fit on the labeled set, record the round, then buy the next `step` paragraphs (or finish)."""
        train = np.asarray(self.labeled)
        unlabeled = np.asarray(self.unlabeled, dtype=np.int64)
        tag = f"s{self.seed}-{self.strategy}-n{len(self.labeled)}"
        row, scores_pool, thresholds = fit_round(train, unlabeled, tag)
        row = {"labeled": len(self.labeled), **row,
               "positives": {label: int(y[train][:, i].sum()) for i, label in enumerate(labels)}}
        self.curve.append(row)
        log.info("%s seed=%d labeled=%d dev_macro=%.4f dev_micro=%.4f test_macro=%.4f", self.strategy, self.seed,
                 len(self.labeled), row["dev_macro_f1"], row["dev_micro_f1"], row["test_macro_f1"])
        if not self.unlabeled or (self.rounds is not None and len(self.curve) > self.rounds):
            self.done = True
            return row
        take = min(self.step, len(self.unlabeled))
        if self.strategy == "random":
            picked = set(self.rng.choice(len(self.unlabeled), size=take, replace=False).tolist())
        else:
            value = topic_uncertainty(scores_pool, thresholds)
            # most uncertain first; random tie-break so constant-score labels do not pick in pool order
            picked = set(np.lexsort((self.rng.random(len(self.unlabeled)), -value))[:take].tolist())
        self.labeled += [self.unlabeled[i] for i in sorted(picked)]
        self.unlabeled = [u for i, u in enumerate(self.unlabeled) if i not in picked]
        return row


def summarise(runs: dict[str, list[list[dict[str, float]]]]) -> dict[str, list[dict[str, float]]]:
    summary = {}
    for strategy, curves in runs.items():
        rows = []
        for step in range(min((len(c) for c in curves), default=0)):
            row: dict[str, float] = {"labeled": curves[0][step]["labeled"]}
            for metric in ("dev_macro_f1", "test_macro_f1", "dev_micro_f1", "test_micro_f1"):
                values = np.array([c[step][metric] for c in curves])
                row[f"{metric}_mean"] = round(float(values.mean()), 4)
                row[f"{metric}_sd"] = round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)
            rows.append(row)
        summary[strategy] = rows
    return summary


def paired_gain(runs: dict[str, list[list[dict[str, float]]]], metric: str) -> list[dict[str, float]]:
    """Uncertainty − random per round, paired by seed (same start set)."""
    out = []
    for step in range(min(len(c) for curves in runs.values() for c in curves)):
        diffs = np.array([u[step][metric] - r[step][metric]
                          for u, r in zip(runs["uncertainty"], runs["random"], strict=True)])
        out.append({"labeled": runs["random"][0][step]["labeled"], "mean": round(float(diffs.mean()), 4),
                    "sd": round(float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, 4),
                    "seeds_better": int((diffs > 0).sum())})
    return out


def plot(summary: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, metric in zip(axes, ("dev_macro_f1", "test_macro_f1"), strict=True):
        for strategy, style in (("uncertainty", "-o"), ("random", "--s")):
            rows = summary[strategy]
            x = [r["labeled"] for r in rows]
            mean = np.array([r[f"{metric}_mean"] for r in rows])
            sd = np.array([r[f"{metric}_sd"] for r in rows])
            ax.plot(x, mean, style, label=f"{strategy} sampling", markersize=4)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
        ax.set_xlabel("labeled paragraphs")
        ax.set_title(metric.replace("_", " ") + (" (thresholds tuned on dev)" if metric.startswith("test") else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("macro-F1 (mean ± sd over seeds)")
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_data(export: Path, out: Path, schema: LabelSchema) -> dict[str, list[Record]]:
    config = load_labeling_config()
    imported = import_tasks(read_export_file(export), out / "data", schema, config, str(export))
    records = imported.result.records
    return split_records(records, load_assignment(out / "data" / "splits.json"), config.split.group_by)


def device_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # informational only
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--export", type=Path, default=None, help="Label Studio export (default: the shared one)")
    parser.add_argument("--learner", choices=("embeddings", "lexical", "transformer"), default="embeddings")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=200)
    parser.add_argument("--step", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=None, help="stop after this many acquisitions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="cap each split (pool, dev, test): smoke runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="transformer: extra classifier config override (repeatable), e.g. model.base_model=PATH")
    parser.add_argument("--keep-models", action="store_true", help="transformer: keep each round's model dir")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds: start no round that would end past it (judged by the last round's time)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.overrides and args.learner != "transformer":
        parser.error("--set applies to --learner transformer only")
    started = time.perf_counter()
    schema = load_schema()
    export = args.export or default_export()
    parts = load_data(export, args.out, schema)
    if args.limit is not None:
        parts = {name: part[: args.limit] for name, part in parts.items()}
    records = [*parts["train"], *parts["dev"], *parts["test"]]
    texts = [r.text for r in records]
    labels = schema.topic_names
    y = multilabel_indicator([r.labels for r in records], labels)
    n_train, n_dev = len(parts["train"]), len(parts["dev"])
    pool = np.arange(n_train)
    dev = np.arange(n_train, n_train + n_dev)
    test = np.arange(n_train + n_dev, len(records))
    overrides: list[str] = []
    if args.learner == "embeddings":
        features = embed(texts, args.out / "embeddings.npz", threads=args.threads)
        make = lambda seed: ProxyRounds(EmbeddingLearner(features, len(labels), seed), y, dev, test, schema)  # noqa: E731
        name = EmbeddingLearner.name
    elif args.learner == "lexical":
        make = lambda seed: ProxyRounds(LexicalLearner(texts, labels, seed), y, dev, test, schema)  # noqa: E731
        name = LexicalLearner.name
    else:
        overrides = [*([f"training.threads={args.threads}"] if args.threads else []), *args.overrides]
        learner = TransformerLearner(records, parts, schema, str(export), args.out, overrides, args.keep_models)
        make = lambda seed: learner  # noqa: E731 - one learner: its cache shares round 1 between strategies
        name = learner.name
        overrides = [*TransformerLearner.base_overrides, "output.dir=<out>/models/<round>", *overrides]
    title = f"pool {n_train} / dev {n_dev} / test {len(test)}\nlearner: {name}"
    runs: dict[str, list[list[dict]]] = {s: [] for s in STRATEGIES}
    args.out.mkdir(parents=True, exist_ok=True)
    state = {"complete": False, "stopped_by_time_budget": False}

    def write() -> dict:
        summary = summarise(runs)
        result = {
            "learner": name,
            "learner_option": args.learner,
            "config_overrides": overrides or None,
            "device": device_name() if args.learner == "transformer" else "cpu",
            "decision_code": ["frontwire.metrics.tune_thresholds (on dev)", "frontwire.predictor.decode_topics",
                              "frontwire.labeling.informativeness.topic_uncertainty"],
            "export": str(export),
            "splits": {"pool(train)": n_train, "dev": n_dev, "test": len(test)},
            "label_counts_pool": {label: int(y[pool][:, i].sum()) for i, label in enumerate(labels)},
            "start": args.start, "step": args.step, "seeds": args.seeds, "limit": args.limit,
            **state,
            "summary": summary,
            "uncertainty_minus_random": {"dev_macro_f1": paired_gain(runs, "dev_macro_f1"),
                                         "dev_micro_f1": paired_gain(runs, "dev_micro_f1"),
                                         "test_macro_f1": paired_gain(runs, "test_macro_f1")},
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
        }
        (args.out / "active_learning.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        plot(summary, args.out / "active_learning.png",
             f"Uncertainty vs random sampling, {len(runs['random'])} seed(s), {title}")
        return result

    last_round = 0.0
    for seed in range(args.seeds):
        fit_round = make(seed)
        trajectories = [Trajectory(pool, strategy, seed, args.start, args.step, args.rounds) for strategy in STRATEGIES]
        for t in trajectories:
            runs[t.strategy].append(t.curve)
        while not state["stopped_by_time_budget"] and not all(t.done for t in trajectories):
            for t in trajectories:  # interleaved: both strategies reach round k before either starts k+1
                if t.done:
                    continue
                elapsed = time.perf_counter() - started
                free = getattr(fit_round, "is_cached", lambda *_: False)(t.labeled, t.unlabeled)
                if args.time_budget is not None and not free and elapsed + 1.3 * last_round > args.time_budget:
                    log.warning("time budget %.0f s: stopping after %.0f s (last round took %.0f s)",
                                args.time_budget, elapsed, last_round)
                    state["stopped_by_time_budget"] = True
                    break
                round_started = time.perf_counter()
                t.advance(fit_round, y, labels)
                if not t.curve[-1].get("reused"):
                    last_round = time.perf_counter() - round_started
                write()
        if state["stopped_by_time_budget"]:
            break
    state["complete"] = not state["stopped_by_time_budget"]
    result = write()
    summary = result["summary"]
    print(f"learner: {name}")
    print(f"{'labeled':>8} | {'uncertainty dev':>17} | {'random dev':>17} | {'unc test':>17} | {'rand test':>17}")
    for u, r in zip(summary["uncertainty"], summary["random"], strict=False):
        print(f"{u['labeled']:>8} | {u['dev_macro_f1_mean']:.3f} ± {u['dev_macro_f1_sd']:.3f}     | "
              f"{r['dev_macro_f1_mean']:.3f} ± {r['dev_macro_f1_sd']:.3f}     | "
              f"{u['test_macro_f1_mean']:.3f} ± {u['test_macro_f1_sd']:.3f}     | "
              f"{r['test_macro_f1_mean']:.3f} ± {r['test_macro_f1_sd']:.3f}")
    print(f"-> {args.out / 'active_learning.json'}, {args.out / 'active_learning.png'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
