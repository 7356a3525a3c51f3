"""`frontwire train ner`: fine-tune the token-classification NER model.

Character spans become BIO tags through the tokenizer's offset mapping (never by re-tokenizing word pieces):
the first sub-token of each word gets B-/I-/O, the other sub-tokens are ignored by the loss, which matches
the predictor's word-level decoding. Long paragraphs train as strided windows.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

import mlflow
from transformers import AutoModelForTokenClassification

from frontwire.metrics import entity_confusion, entity_metrics
from frontwire.modeling import (
    MODEL_FORMAT,
    ModelMeta,
    freeze_lower_layers,
    load_tokenizer,
    pick_device,
    resolve_base_model,
    set_threads,
)
from frontwire.predictor import EntityModel, TorchForward
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
from frontwire.train.settings import NerConfig
from frontwire.windows import Windows, encode_windows

log = logging.getLogger(__name__)
IGNORE = -100


def window_tags(windows: Windows, window: int, record: Record, tag_index: dict[str, int]) -> tuple[list[int], int]:
    """Tag ids for one window and the number of entity boundaries that fall inside a word (misaligned)."""
    spans = record.entities
    starts = [s.start for s in spans]
    offsets, word_ids = windows.offsets[window], windows.word_ids[window]
    tags: list[int] = []
    misaligned = 0
    previous_word = None
    for token, word in enumerate(word_ids):
        if word is None or word == previous_word:
            tags.append(IGNORE)
            previous_word = word if word is not None else previous_word
            continue
        previous_word = word
        char = offsets[token][0]
        at = bisect.bisect_right(starts, char) - 1
        if at >= 0 and char < spans[at].end:
            span = spans[at]
            tags.append(tag_index[f"{'B' if char == span.start else 'I'}-{span.label}"])
        else:
            # a span that starts inside this word (its word began earlier) cannot be represented: count it
            word_end = max(offsets[t][1] for t, w in enumerate(word_ids) if w == word)
            nxt = at + 1
            if nxt < len(spans) and spans[nxt].start < word_end:
                misaligned += 1
                tags.append(tag_index[f"B-{spans[nxt].label}"])
            else:
                tags.append(tag_index["O"])
    return tags, misaligned


def make_features(
    tokenizer, records: list[Record], tags: list[str], max_length: int, stride: int
) -> tuple[list[dict[str, Any]], int]:
    windows = encode_windows(tokenizer, [r.text for r in records], max_length, stride)
    tag_index = {tag: i for i, tag in enumerate(tags)}
    features, misaligned = [], 0
    for window, text_index in enumerate(windows.text_index):
        labels, bad = window_tags(windows, window, records[text_index], tag_index)
        misaligned += bad
        features.append({"input_ids": windows.input_ids[window], "labels": labels})
    return features, misaligned


def gold_spans(records: list[Record]) -> list[list[tuple[int, int, str]]]:
    return [[(s.start, s.end, s.label) for s in r.entities] for r in records]


def predicted_spans(model: EntityModel, records: list[Record]) -> list[list[tuple[int, int, str]]]:
    return [[(e["start"], e["end"], e["label"]) for e in ents] for ents in model.entities([r.text for r in records])]


def train_ner(
    config: NerConfig,
    schema: LabelSchema,
    data: SplitData | None = None,
    resume: bool = False,
    run_name: str | None = None,
) -> TrainOutcome:
    from frontwire.train.card import write_model_card
    from frontwire.train.plots import confusion_matrix_plot
    from frontwire.train.tracking import log_splits, setup_tracking

    threads = set_threads(config.training.threads)
    seed_everything(config.training.seed)
    data = data or load_split_data(config.data.source, schema, config.data.limit)
    tags = schema.bio_tags
    base = resolve_base_model(config.model.base_model)
    tokenizer = load_tokenizer(base)
    features, misaligned = make_features(tokenizer, data.train, tags, config.model.max_length, config.model.stride)
    log.info(
        "data source=%s train=%d windows=%d misaligned_boundaries=%d",
        data.source,
        len(data.train),
        len(features),
        misaligned,
    )
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
        classifier_dropout=config.model.dropout,
    )
    frozen = freeze_lower_layers(model, config.training.freeze_embeddings, config.training.freeze_layers)
    log.info("frozen parameters=%d of %d", frozen, sum(p.numel() for p in model.parameters()))
    device = pick_device(config.training.device)
    name, output_dir = name_and_dir("ner", run_name, config.output.dir)
    checkpoints = checkpoint_dir(output_dir)
    meta = ModelMeta(
        format=MODEL_FORMAT,
        kind="ner",
        name=name,
        schema=schema,
        labels=tags,
        max_length=config.model.max_length,
        stride=config.model.stride,
        base_model=config.model.base_model,
        dataset=data.describe(),
        train_config=config.model_dump(mode="json"),
    )

    def evaluate(current) -> tuple[float, dict[str, float]]:
        entity_model = EntityModel(meta, tokenizer, TorchForward(current, device))
        scores = entity_metrics(
            [r.text for r in data.dev], gold_spans(data.dev), predicted_spans(entity_model, data.dev)
        )
        return scores["micro"]["f1"], {
            "epoch_dev_entity_f1": scores["micro"]["f1"],
            "epoch_dev_entity_macro_f1": scores["macro"]["f1"],
        }

    tracking_uri = setup_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    params = {"runtime.threads": threads, "runtime.device": str(device), "data.train_windows": len(features),
              "data.misaligned_boundaries": misaligned}
    with training_run("ner", name, schema, config, params) as run:
        log_splits(data.parts(), meta.dataset, "entities")
        result = tracked_fit(model, features, config.training, evaluate, checkpoints,
                             pad_id=tokenizer.pad_token_id, label_pad=IGNORE, head_prefixes=("classifier.",),
                             device=device, resume=resume)

        entity_model = EntityModel(meta, tokenizer, TorchForward(model, device))
        metrics: dict[str, Any] = {}
        dev_pred = predicted_spans(entity_model, data.dev)
        metrics["dev"] = entity_metrics([r.text for r in data.dev], gold_spans(data.dev), dev_pred)
        if data.test:
            metrics["test"] = entity_metrics(
                [r.text for r in data.test], gold_spans(data.test), predicted_spans(entity_model, data.test)
            )
        metrics["training"] = fit_summary(result)
        meta.metrics = metrics

        model.cpu().save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        meta.save(output_dir)
        write_model_card(output_dir, meta)
        mlflow.log_metrics(flat_metrics(metrics))
        matrix, names = entity_confusion(gold_spans(data.dev), dev_pred, schema.entity_names)
        mlflow.log_figure(
            confusion_matrix_plot(matrix, names, "dev entity types (same boundaries)"), "plots/dev_entity_confusion.png"
        )
        version = log_trained_model(output_dir, "ner", data.dev, config.mlflow)
        run_id = run.info.run_id
    remove_checkpoints(checkpoints)
    log.info(
        "ner done dir=%s run=%s version=%s dev_f1=%.4f", output_dir, run_id, version, metrics["dev"]["micro"]["f1"]
    )
    return TrainOutcome(output_dir, run_id, version, metrics, tracking_uri)
