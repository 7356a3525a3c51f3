"""`frontwire train classifier`: fine-tune the multi-label topic classifier.

Flow (linear, like the Hugging Face example scripts): data → windows → model → fit with per-epoch dev
evaluation and early stopping → per-label thresholds tuned on dev → dev/test metrics → model dir (weights,
tokenizer, schema, thresholds, card) → MLflow run (params, dataset inputs, metrics, plots, pyfunc model,
registered version with alias `candidate`) → TF-IDF baseline in the same experiment.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import numpy as np
from transformers import AutoModel

from frontwire.lexical import LexicalScorer
from frontwire.metrics import multilabel_indicator, topic_metrics, tune_thresholds
from frontwire.model_files import LEGACY_LEXICAL_FILE
from frontwire.modeling import (
    MODEL_FORMAT,
    EncoderClassifier,
    ModelMeta,
    freeze_lower_layers,
    load_tokenizer,
    pick_device,
    resolve_base_model,
    save_classifier,
    set_threads,
)
from frontwire.predictor import TopicModel, TorchForward
from frontwire.records import Record
from frontwire.schema import LabelSchema
from frontwire.train.data import SplitData, load_split_data
from frontwire.train.loop import seed_everything
from frontwire.train.run_steps import (
    TrainOutcome,
    checkpoint_dir,
    fit_summary,
    flat_metrics,
    log_trained_model,
    name_and_dir,
    remove_checkpoints,
    tracked_fit,
    training_run,
)
from frontwire.train.self_training import describe_with_pseudo, pseudo_records
from frontwire.train.settings import ClassifierConfig
from frontwire.windows import encode_windows

log = logging.getLogger(__name__)


def make_features(tokenizer, records: list[Record], labels: list[str], max_length: int, stride: int) -> list[dict]:
    """One example per window; every window of a paragraph carries the paragraph's labels."""
    windows = encode_windows(tokenizer, [r.text for r in records], max_length, stride)
    targets = multilabel_indicator([r.labels for r in records], labels).astype(np.float32)
    return [
        {"input_ids": ids, "labels": targets[text]}
        for ids, text in zip(windows.input_ids, windows.text_index, strict=True)
    ]


def positive_weights(records: list[Record], labels: list[str], mode: str) -> np.ndarray:
    y = multilabel_indicator([r.labels for r in records], labels)
    positives = y.sum(0).clip(min=1)
    ratio = (len(records) - positives) / positives
    if mode == "none":
        return np.ones(len(labels), dtype=np.float32)
    weights = np.sqrt(ratio) if mode == "sqrt" else ratio
    return np.clip(weights, 1.0, 50.0).astype(np.float32)


def score_records(model: TopicModel, records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    return multilabel_indicator([r.labels for r in records], model.meta.labels), model.scores([r.text for r in records])


def decoded(model: TopicModel, scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    return multilabel_indicator([model.decode(row, thresholds) for row in scores], model.meta.labels)


def tune(config: ClassifierConfig, y_true: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict[str, float]:
    if not config.thresholds.tune:
        return dict.fromkeys(labels, config.thresholds.default)
    return tune_thresholds(
        y_true, scores, labels, config.thresholds.grid_min, config.thresholds.grid_max, config.thresholds.default
    )


def choose_lexical_blend(topic_model: TopicModel, data: SplitData, config: ClassifierConfig) -> LexicalScorer:
    """Fit the TF-IDF scorer on train and pick its blend weight on dev (macro-F1 at tuned thresholds).

    Returns the fitted scorer: it is also the TF-IDF baseline, which need not be fitted a second time.
    """
    labels = topic_model.meta.labels
    lexical = LexicalScorer(labels, config.training.seed).fit(
        [r.text for r in data.train], multilabel_indicator([r.labels for r in data.train], labels)
    )
    topic_model.lexical = None
    topic_model.meta.lexical_weight = 0.0
    y_dev, neural = score_records(topic_model, data.dev)
    lexical_dev = lexical.scores([r.text for r in data.dev])
    best_weight, best_f1 = 0.0, -1.0
    for weight in config.ensemble.weights:
        blended = (1 - weight) * neural + weight * lexical_dev
        f1 = topic_metrics(y_dev, decoded(topic_model, blended, tune(config, y_dev, blended, labels)), labels)["macro"][
            "f1"
        ]
        log.info("lexical blend weight=%.2f dev_macro_f1=%.4f", weight, f1)
        if f1 > best_f1 + 1e-9:
            best_weight, best_f1 = weight, f1
    topic_model.meta.lexical_weight = best_weight
    topic_model.lexical = lexical if best_weight > 0 else None
    return lexical


def train_classifier(
    config: ClassifierConfig,
    schema: LabelSchema,
    data: SplitData | None = None,
    resume: bool = False,
    run_name: str | None = None,
) -> TrainOutcome:
    from frontwire.train.tracking import log_splits, setup_tracking

    threads = set_threads(config.training.threads)
    seed_everything(config.training.seed)
    data = data or load_split_data(config.data.source, schema, config.data.limit)
    labels = schema.topic_names
    base = resolve_base_model(config.model.base_model)
    tokenizer = load_tokenizer(base)
    pseudo = pseudo_records(
        config.self_training, data, labels, config.mlflow.registered_model, config.mlflow.tracking_uri
    )
    train_records = [*data.train, *pseudo]
    features = make_features(tokenizer, train_records, labels, config.model.max_length, config.model.stride)
    log.info(
        "data source=%s train=%d pseudo=%d windows=%d dev=%d test=%d",
        data.source,
        len(data.train),
        len(pseudo),
        len(features),
        len(data.dev),
        len(data.test),
    )

    pos_weight = positive_weights(train_records, labels, config.training.pos_weight)
    import torch

    model = EncoderClassifier(
        AutoModel.from_pretrained(base),
        len(labels),
        config.model.pooling,
        config.model.dropout,
        torch.from_numpy(pos_weight),
    )
    frozen = freeze_lower_layers(model, config.training.freeze_embeddings, config.training.freeze_layers)
    log.info("frozen parameters=%d of %d", frozen, sum(p.numel() for p in model.parameters()))
    device = pick_device(config.training.device)
    name, output_dir = name_and_dir("classifier", run_name, config.output.dir)
    checkpoints = checkpoint_dir(output_dir)
    meta = ModelMeta(
        format=MODEL_FORMAT,
        kind="classifier",
        name=name,
        schema=schema,
        labels=labels,
        max_length=config.model.max_length,
        stride=config.model.stride,
        pooling=config.model.pooling,
        base_model=config.model.base_model,
        dataset=describe_with_pseudo(data, pseudo),
        train_config=config.model_dump(mode="json"),
    )

    def evaluate(current: torch.nn.Module) -> tuple[float, dict[str, float]]:
        topic_model = TopicModel(meta, tokenizer, TorchForward(current, device))
        y_true, scores = score_records(topic_model, data.dev)
        thresholds = tune(config, y_true, scores, labels)
        tuned = topic_metrics(y_true, decoded(topic_model, scores, thresholds), labels)
        plain = topic_metrics(y_true, decoded(topic_model, scores, {}), labels)
        # epoch_* names: the final dev_* metrics are logged once at the end and must not be shadowed
        return tuned["macro"]["f1"], {
            "epoch_dev_macro_f1": tuned["macro"]["f1"],
            "epoch_dev_micro_f1": tuned["micro"]["f1"],
            "epoch_dev_macro_f1_at_0.5": plain["macro"]["f1"],
        }

    tracking_uri = setup_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    params = {"runtime.threads": threads, "runtime.device": str(device), "data.train_windows": len(features)}
    with training_run("classifier", name, schema, config, params) as run:
        log_splits({**data.parts(), **({"pseudo": pseudo} if pseudo else {})}, meta.dataset, "labels")
        result = tracked_fit(model, features, config.training, evaluate, checkpoints,
                             pad_id=tokenizer.pad_token_id, label_pad=None, head_prefixes=("head.",), device=device,
                             resume=resume)

        topic_model = TopicModel(meta, tokenizer, TorchForward(model, device))
        lexical = choose_lexical_blend(topic_model, data, config) if config.ensemble.lexical else None
        y_dev, dev_scores = score_records(topic_model, data.dev)
        thresholds = tune(config, y_dev, dev_scores, labels)
        meta.thresholds = thresholds
        metrics: dict[str, Any] = {"dev": topic_metrics(y_dev, decoded(topic_model, dev_scores, thresholds), labels)}
        if data.test:
            y_test, test_scores = score_records(topic_model, data.test)
            metrics["test"] = topic_metrics(y_test, decoded(topic_model, test_scores, thresholds), labels)
        metrics["lexical_weight"] = meta.lexical_weight
        metrics["training"] = fit_summary(result)
        meta.metrics = metrics

        save_classifier(model.cpu(), output_dir)
        # an older run's pickled blend in a reused output dir would get this model refused at every load
        (output_dir / LEGACY_LEXICAL_FILE).unlink(missing_ok=True)
        if topic_model.lexical is not None:
            topic_model.lexical.save(output_dir)
        tokenizer.save_pretrained(output_dir)
        meta.save(output_dir)
        from frontwire.train.card import write_model_card
        from frontwire.train.plots import pr_curves

        write_model_card(output_dir, meta)
        mlflow.log_metrics(flat_metrics(metrics))
        mlflow.log_dict(thresholds, "thresholds.json")
        mlflow.log_figure(pr_curves(y_dev, dev_scores, labels, thresholds), "plots/dev_pr_curves.png")
        version = log_trained_model(output_dir, "classifier", data.dev, config.mlflow)
        run_id = run.info.run_id
    remove_checkpoints(checkpoints)
    if config.mlflow.baseline:
        from frontwire.train.baseline import train_baseline

        baseline = train_baseline(data, schema, tracking_uri, config.mlflow.experiment, scorer=lexical)
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics(
                {f"baseline_{k}": v for k, v in flat_metrics(baseline).items() if k.endswith(("micro_f1", "macro_f1"))}
            )
            margin = metrics["dev"]["micro"]["f1"] - baseline["dev"]["micro"]["f1"]
            mlflow.log_metric("margin_over_baseline_dev_micro_f1", margin)
        metrics["baseline"] = baseline
    log.info(
        "classifier done dir=%s run=%s version=%s dev_micro=%.4f dev_macro=%.4f",
        output_dir,
        run_id,
        version,
        metrics["dev"]["micro"]["f1"],
        metrics["dev"]["macro"]["f1"],
    )
    return TrainOutcome(output_dir, run_id, version, metrics, tracking_uri, lexical)
