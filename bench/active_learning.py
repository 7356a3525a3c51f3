"""Active-learning simulation: is uncertainty sampling worth it on frontwire's own data?

    python bench/active_learning.py --out runs/active_learning

The shared Label Studio export is imported with `frontwire.labeling.importer` (stable, article-grouped
splits). The train split is the unlabeled pool; each seed starts from the same-size random set of labeled
paragraphs (200) and buys 200 more per round, either at random or by uncertainty sampling, until the pool is
spent. After each round the learner is refitted and scored on dev (macro-F1, the number the issue asks for)
and on test (thresholds tuned on dev, so the test figure carries no tuning leak).

Learner (a proxy: a transformer fine-tune per round costs ~30 CPU-minutes here): frozen all-MiniLM-L6-v2
embeddings, mean-pooled over the model's own 128-token windows and computed ONCE for every paragraph (cached
under --out), plus one-vs-rest logistic regression (`--learner embeddings`, default); or TF-IDF + logistic
regression, `frontwire.lexical.LexicalScorer` (`--learner lexical`). Both use the production decision code:
per-label thresholds tuned on dev by `frontwire.metrics.tune_thresholds`, labels decoded by
`frontwire.predictor.decode_topics` (exclusive boilerplate), and uncertainty measured by
`frontwire.labeling.suggest.topic_uncertainty` (distance of each score to its label's threshold), the very
score `frontwire labeling suggest` ranks by (its NER-margin part is left out: the learner is topics only).

Outputs in --out: active_learning.json (per seed, per round, and mean ± sd), active_learning.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from frontwire.labeling.importer import import_tasks, read_export_file
from frontwire.labeling.settings import load_labeling_config
from frontwire.labeling.suggest import topic_uncertainty
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
    from frontwire.predictor import encode_windows, length_sorted_batches, pad_batch

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


# ----------------------------------------------------------------------------------------------- simulation
def decode(scores: np.ndarray, labels: list[str], thresholds: dict[str, float], exclusive: list[str]) -> np.ndarray:
    return multilabel_indicator([decode_topics(row, labels, thresholds, exclusive) for row in scores], labels)


def simulate(learner, y: np.ndarray, pool: np.ndarray, dev: np.ndarray, test: np.ndarray, schema: LabelSchema,
             strategy: str, seed: int, start: int, step: int, rounds: int | None) -> list[dict[str, float]]:
    labels, exclusive = schema.topic_names, schema.exclusive_topics
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    labeled, unlabeled = list(order[:start]), list(order[start:])
    curve = []
    while True:
        train = np.asarray(labeled)
        scores_dev, scores_test, scores_pool = learner.fit_scores(
            train, y[train], [dev, test, np.asarray(unlabeled, dtype=np.int64)])
        thresholds = tune_thresholds(y[dev], scores_dev, labels)
        dev_m = topic_metrics(y[dev], decode(scores_dev, labels, thresholds, exclusive), labels)
        test_m = topic_metrics(y[test], decode(scores_test, labels, thresholds, exclusive), labels)
        curve.append({"labeled": len(labeled), "dev_macro_f1": dev_m["macro"]["f1"],
                      "dev_micro_f1": dev_m["micro"]["f1"], "test_macro_f1": test_m["macro"]["f1"],
                      "test_micro_f1": test_m["micro"]["f1"],
                      "positives": {label: int(y[train][:, i].sum()) for i, label in enumerate(labels)}})
        log.info("%s seed=%d labeled=%d dev_macro=%.4f test_macro=%.4f", strategy, seed, len(labeled),
                 curve[-1]["dev_macro_f1"], curve[-1]["test_macro_f1"])
        if not unlabeled or (rounds is not None and len(curve) > rounds):
            return curve
        take = min(step, len(unlabeled))
        if strategy == "random":
            picked = set(rng.choice(len(unlabeled), size=take, replace=False).tolist())
        else:
            value = topic_uncertainty(scores_pool, [thresholds[label] for label in labels])
            # most uncertain first; random tie-break so constant-score labels do not pick in pool order
            picked = set(np.lexsort((rng.random(len(unlabeled)), -value))[:take].tolist())
        labeled += [unlabeled[i] for i in sorted(picked)]
        unlabeled = [u for i, u in enumerate(unlabeled) if i not in picked]


def summarise(runs: dict[str, list[list[dict[str, float]]]]) -> dict[str, list[dict[str, float]]]:
    summary = {}
    for strategy, curves in runs.items():
        rows = []
        for step in range(min(len(c) for c in curves)):
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
    for step in range(min(len(c) for c in runs["uncertainty"])):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--export", type=Path, default=None, help="Label Studio export (default: the shared one)")
    parser.add_argument("--learner", choices=("embeddings", "lexical"), default="embeddings")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=200)
    parser.add_argument("--step", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=None, help="stop after this many acquisitions")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    started = time.perf_counter()
    schema = load_schema()
    export = args.export or default_export()
    parts = load_data(export, args.out, schema)
    records = [*parts["train"], *parts["dev"], *parts["test"]]
    texts = [r.text for r in records]
    labels = schema.topic_names
    y = multilabel_indicator([r.labels for r in records], labels)
    n_train, n_dev = len(parts["train"]), len(parts["dev"])
    pool = np.arange(n_train)
    dev = np.arange(n_train, n_train + n_dev)
    test = np.arange(n_train + n_dev, len(records))
    if args.learner == "embeddings":
        features = embed(texts, args.out / "embeddings.npz", threads=args.threads)
        make = lambda seed: EmbeddingLearner(features, len(labels), seed)  # noqa: E731
        name = EmbeddingLearner.name
    else:
        make = lambda seed: LexicalLearner(texts, labels, seed)  # noqa: E731
        name = LexicalLearner.name
    runs: dict[str, list[list[dict[str, float]]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        for strategy in STRATEGIES:
            runs[strategy].append(simulate(make(seed), y, pool, dev, test, schema, strategy, seed, args.start,
                                           args.step, args.rounds))
    summary = summarise(runs)
    result = {
        "learner": name,
        "decision_code": ["frontwire.metrics.tune_thresholds (on dev)", "frontwire.predictor.decode_topics",
                          "frontwire.labeling.suggest.topic_uncertainty"],
        "export": str(export),
        "splits": {"pool(train)": n_train, "dev": n_dev, "test": len(test)},
        "label_counts_pool": {label: int(y[pool][:, i].sum()) for i, label in enumerate(labels)},
        "start": args.start, "step": args.step, "seeds": args.seeds,
        "summary": summary,
        "uncertainty_minus_random": {"dev_macro_f1": paired_gain(runs, "dev_macro_f1"),
                                     "test_macro_f1": paired_gain(runs, "test_macro_f1")},
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "active_learning.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(summary, args.out / "active_learning.png",
         f"Uncertainty vs random sampling, {args.seeds} seeds, pool {n_train} / dev {n_dev} / test {len(test)}\n"
         f"learner: {name}")
    print(f"learner: {name}")
    print(f"{'labeled':>8} | {'uncertainty dev':>17} | {'random dev':>17} | {'unc test':>17} | {'rand test':>17}")
    for u, r in zip(summary["uncertainty"], summary["random"], strict=True):
        print(f"{u['labeled']:>8} | {u['dev_macro_f1_mean']:.3f} ± {u['dev_macro_f1_sd']:.3f}     | "
              f"{r['dev_macro_f1_mean']:.3f} ± {r['dev_macro_f1_sd']:.3f}     | "
              f"{u['test_macro_f1_mean']:.3f} ± {u['test_macro_f1_sd']:.3f}     | "
              f"{r['test_macro_f1_mean']:.3f} ± {r['test_macro_f1_sd']:.3f}")
    print(f"-> {args.out / 'active_learning.json'}, {args.out / 'active_learning.png'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
