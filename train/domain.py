"""`frontwire train domain-adapt`: continue masked-LM pretraining of the base encoder on unlabeled news.

Domain-adaptive pretraining (Gururangan et al., 2020, "Don't Stop Pretraining"): a few epochs of MLM on
in-domain text before fine-tuning. The unlabeled archive (whole articles) is split into paragraphs with the
same splitter as everything else; paragraphs that are the dev or test split's texts are left out, so the
encoder never sees the text it will be selected or scored on. The result is a plain Hugging Face model folder:
pass it as `model.base_model` to `frontwire train classifier|ner`.

all-MiniLM-L6-v2 ships without its MLM head (sentence-transformers kept only the encoder), so the head's
transform is freshly initialised and the decoder tied to the word embeddings; `head_warmup_steps` train the
head alone before the encoder joins, so its random gradients do not reach the pretrained weights.
Held-out MLM loss (a fixed 5 % of paragraphs, fixed masks) is measured before and after and logged to MLflow.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from frontwire.config import StrictModel, load_config
from frontwire.documents import content_hash, read_documents
from frontwire.modeling import pick_device, resolve_base_model, set_threads
from frontwire.progress import progress
from frontwire.windows import length_sorted_batches

log = logging.getLogger(__name__)


class DomainConfig(StrictModel):
    """The `training` section of configs/domain.yaml."""

    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=5e-5, ge=0)
    head_learning_rate: float = Field(default=1e-3, gt=0)
    head_warmup_steps: int = Field(default=100, ge=0)
    max_length: int = Field(default=128, ge=16, le=4096)
    mlm_probability: float = Field(default=0.15, gt=0, lt=1)
    held_out: float = Field(default=0.05, gt=0, lt=1)
    seed: int = 13
    max_steps: int | None = Field(default=None, ge=1)
    threads: int | None = Field(default=None, ge=1)
    device: str = "auto"


class DomainData(StrictModel):
    archives: list[str] = Field(default_factory=list)
    records: str | None = None


class DomainModel(StrictModel):
    base_model: str = "default"


class DomainOutput(StrictModel):
    dir: str | None = None


class DomainMlflow(StrictModel):
    tracking_uri: str | None = None
    experiment: str = "frontwire-domain"


class DomainAdaptConfig(StrictModel):
    data: DomainData = Field(default_factory=DomainData)
    model: DomainModel = Field(default_factory=DomainModel)
    training: DomainConfig = Field(default_factory=DomainConfig)
    output: DomainOutput = Field(default_factory=DomainOutput)
    mlflow: DomainMlflow = Field(default_factory=DomainMlflow)


def load_domain_config(path: Path | str | None = None, overrides: tuple[str, ...] = ()) -> DomainAdaptConfig:
    return load_config(DomainAdaptConfig, path, "domain.yaml", overrides)


def archive_paragraphs(paths: Iterable[Path], exclude_texts: Iterable[str] = (), min_chars: int = 20) -> list[str]:
    """Distinct paragraphs of the archives' documents, minus `exclude_texts` (by whitespace-insensitive hash)."""
    excluded = {content_hash(text) for text in exclude_texts}
    seen: set[str] = set()
    paragraphs: list[str] = []
    for path in paths:
        for document in read_documents(Path(path)):
            for paragraph in document.paragraphs():
                key = content_hash(paragraph.text)
                if len(paragraph.text) < min_chars or key in seen or key in excluded:
                    continue
                seen.add(key)
                paragraphs.append(paragraph.text)
    return paragraphs


def _encode(texts: Sequence[str], tokenizer, max_length: int):
    import datasets

    dataset = datasets.Dataset.from_dict({"text": list(texts)})
    return dataset.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length,
                                               return_special_tokens_mask=True),
                       batched=True, remove_columns=["text"], desc="tokenize")


def _batches(dataset, batch_size: int, rng: np.random.Generator | None) -> list[list[int]]:
    """Length-bucketed batches (little padding), in random order when `rng` is given."""
    batches = length_sorted_batches([len(ids) for ids in dataset["input_ids"]], batch_size)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def masked_lm_loss(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """MLM loss with the vocabulary projection applied to the masked positions only.

    The projection to 30k words is most of an MLM step's cost and only ~15 % of positions are scored, so
    projecting just those makes a step several times cheaper on CPU. Architectures whose head is not one
    module (`cls` for BERT, `lm_head` for RoBERTa-likes) fall back to the model's own forward.
    """
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:
        return model(**inputs).loss
    labels = inputs["labels"]
    encoded = {k: v for k, v in inputs.items() if k not in ("labels", "special_tokens_mask")}
    hidden = model.base_model(**encoded).last_hidden_state
    selected = labels != -100
    logits = head(hidden[selected])
    return torch.nn.functional.cross_entropy(logits.float(), labels[selected])


def _mlm_loss(model, collator, dataset, batches, device) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            inputs = {k: v.to(device) for k, v in collator([dataset[i] for i in batch]).items()}
            masked = int((inputs["labels"] != -100).sum())
            if masked:
                total += float(masked_lm_loss(model, inputs)) * masked
                count += masked
    return total / max(count, 1)


def domain_adapt(paragraphs: Sequence[str], base_model: str, out_dir: Path, config: DomainConfig) -> dict[str, float]:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling
    from transformers import logging as hf_logging

    set_threads(config.threads)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    source = resolve_base_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    hf_logging.set_verbosity_error()  # the missing MLM head is expected (see module docstring)
    model = AutoModelForMaskedLM.from_pretrained(source).to(device)
    hf_logging.set_verbosity_warning()

    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(paragraphs))
    held = max(1, int(len(paragraphs) * config.held_out))
    held_texts = [paragraphs[i] for i in order[:held]]
    train_texts = [paragraphs[i] for i in order[held:]]
    train_set, held_set = _encode(train_texts, tokenizer, config.max_length), _encode(held_texts, tokenizer,
                                                                                       config.max_length)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, return_tensors="pt")
    held_batches = _batches(held_set, config.batch_size, None)

    def held_loss() -> float:
        state = torch.random.get_rng_state()
        torch.manual_seed(config.seed + 1)  # the same masks before and after: the two losses compare
        value = _mlm_loss(model, collator, held_set, held_batches, device)
        torch.random.set_rng_state(state)
        return value

    before = held_loss()
    head = [p for n, p in model.named_parameters() if not n.startswith(model.base_model_prefix + ".")]
    encoder = [p for n, p in model.named_parameters() if n.startswith(model.base_model_prefix + ".")]
    optimizer = torch.optim.AdamW([{"params": head, "lr": config.head_learning_rate},
                                   {"params": encoder, "lr": 0.0}], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total = min(config.epochs * steps_per_epoch, config.max_steps or 10**12)
    step, started, losses = 0, time.perf_counter(), []
    bar = progress(total=total, desc="domain MLM", unit="step", event="domain_mlm", logger=log)
    for epoch in range(config.epochs):
        model.train()
        for batch in _batches(train_set, config.batch_size, rng):
            if step >= total:
                break
            # encoder joins after the head warm-up, then decays linearly to zero
            encoder_lr = 0.0 if step < config.head_warmup_steps else config.learning_rate * (1 - step / total)
            optimizer.param_groups[1]["lr"] = encoder_lr
            inputs = {k: v.to(device) for k, v in collator([train_set[i] for i in batch]).items()}
            loss = masked_lm_loss(model, inputs)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", epoch=epoch + 1)
        log.info("domain_epoch epoch=%d steps=%d train_mlm_loss=%.4f", epoch + 1, step, np.mean(losses[-50:]))
    bar.close()
    after = held_loss()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    metrics = {"held_out_mlm_loss_before": round(before, 4), "held_out_mlm_loss_after": round(after, 4),
               "held_out_perplexity_before": round(math.exp(before), 2),
               "held_out_perplexity_after": round(math.exp(after), 2), "train_paragraphs": len(train_texts),
               "held_out_paragraphs": len(held_texts), "steps": step,
               "seconds": round(time.perf_counter() - started, 1)}
    log.info("domain_adapted out=%s %s", out_dir, " ".join(f"{k}={v}" for k, v in metrics.items()))
    return metrics
