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

# sibling modules: this script runs as `python bench/active_learning.py`, so its folder is on sys.path
from al_curves import Trajectory, paired_gain, plot, summarise
from al_learners import EmbeddingLearner, LexicalLearner, ProxyRounds, TransformerLearner, embed

from frontwire.labeling.importer import import_tasks, read_export_file
from frontwire.labeling.settings import load_labeling_config
from frontwire.metrics import multilabel_indicator
from frontwire.paths import default_export
from frontwire.records import Record
from frontwire.schema import LabelSchema, load_schema
from frontwire.splits import load_assignment, split_records

log = logging.getLogger("active_learning")
STRATEGIES = ("uncertainty", "random")


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
