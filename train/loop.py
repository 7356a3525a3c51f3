"""One training loop for both models: length-bucketed batches, AdamW with warm-up, per-epoch dev
evaluation, early stopping on the dev metric, and checkpoints that `--resume` continues from exactly.

Every epoch re-seeds its shuffling and dropout from (seed, epoch), so a run resumed after epoch k
produces the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from frontwire.progress import progress
from frontwire.windows import pad_batch

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.pt"
BEST_FILE = "best.pt"


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    head_learning_rate: float
    weight_decay: float
    warmup_ratio: float
    early_stopping_patience: int
    seed: int
    max_steps: int | None = None


@dataclass
class FitResult:
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    examples_per_second: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    """The loop state as JSON types: metrics may be numpy scalars, which a weights_only load refuses."""
    return json.loads(json.dumps(state, default=float))


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar-length examples: little padding, still random order."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 32
    batches: list[list[int]] = []
    for offset in range(0, len(order), chunk):
        part = sorted(order[offset : offset + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def collate(features: Sequence[dict[str, Any]], pad_id: int, label_pad: int | None) -> dict[str, torch.Tensor]:
    ids, mask = pad_batch([f["input_ids"] for f in features], pad_id)
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    labels = [f["labels"] for f in features]
    if label_pad is None:  # one label vector per example
        batch["labels"] = torch.tensor(np.asarray(labels), dtype=torch.float32)
    else:  # one label per token, padded with the ignore index
        padded = np.full(ids.shape, label_pad, dtype=np.int64)
        for row, seq in enumerate(labels):
            padded[row, : len(seq)] = seq
        batch["labels"] = torch.from_numpy(padded)
    return batch


def param_groups(model: torch.nn.Module, settings: LoopSettings, head_prefixes: tuple[str, ...]) -> list[dict]:
    decay, no_decay, head = [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(head_prefixes):
            head.append(param)
        elif param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "lr": settings.learning_rate, "weight_decay": settings.weight_decay},
        {"params": no_decay, "lr": settings.learning_rate, "weight_decay": 0.0},
        {"params": head, "lr": settings.head_learning_rate, "weight_decay": settings.weight_decay},
    ]


def fit(
    model: torch.nn.Module,
    features: Sequence[dict[str, Any]],
    settings: LoopSettings,
    evaluate: Callable[[torch.nn.Module], tuple[float, dict[str, float]]],
    checkpoint_dir: Path,
    *,
    pad_id: int,
    label_pad: int | None,
    head_prefixes: tuple[str, ...],
    device: torch.device,
    resume: bool = False,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train, keep the best epoch's weights in `checkpoint_dir/best.pt`, and load them back at the end."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, settings, head_prefixes))
    lengths = [len(f["input_ids"]) for f in features]
    steps_per_epoch = -(-len(features) // settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * total_steps), total_steps)
    state = {
        "epoch": 0,
        "step": 0,
        "best_metric": -1.0,
        "best_epoch": 0,
        "stale": 0,
        "history": [],
        "seconds": 0.0,
        "total_steps": total_steps,
    }

    last = checkpoint_dir / CHECKPOINT_FILE
    if resume and last.is_file():
        # weights_only: the unpickler builds tensors and plain containers only, so a planted checkpoint runs no code
        saved = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        if state.get("total_steps", total_steps) != total_steps:
            # More epochs or max_steps than the checkpointed run: its schedule had already decayed further, so this
            # continues on the new schedule but cannot equal an uninterrupted run of the new length. The optimizer
            # state carries the old schedule's learning rate: take the new schedule's for the next step instead.
            log.warning(
                "resuming with a different schedule length (%d steps, checkpoint %d): continuing on the "
                "new schedule from step %d",
                total_steps,
                state["total_steps"],
                scheduler.last_epoch,
            )
            for group, base_lr, factor in zip(
                optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
            ):
                group["lr"] = base_lr * factor(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
            state["total_steps"] = total_steps
        log.info(
            "resumed checkpoint=%s epoch=%d step=%d best=%.4f",
            last,
            state["epoch"],
            state["step"],
            state["best_metric"],
        )
    elif resume:
        log.warning("resume asked but no checkpoint at %s: starting fresh", last)

    examples_seen = 0
    for epoch in range(state["epoch"] + 1, settings.epochs + 1):
        out_of_steps = bool(settings.max_steps) and state["step"] >= settings.max_steps
        if state["stale"] >= settings.early_stopping_patience or out_of_steps:
            break
        seed_everything(settings.seed * 1000 + epoch)
        model.train()
        started = time.perf_counter()
        batches = bucketed_batches(lengths, settings.batch_size, settings.seed * 1000 + epoch)
        running, count = 0.0, 0
        bar = progress(batches, desc=f"epoch {epoch}/{settings.epochs}", unit="batch", event="epoch",
                       fields={"epoch": f"{epoch}/{settings.epochs}"}, logger=log, leave=False, dynamic_ncols=True)
        for batch_indices in bar:
            collated = collate([features[i] for i in batch_indices], pad_id, label_pad)
            batch = {k: v.to(device) for k, v in collated.items()}
            output = model(**batch)
            loss = output["loss"] if isinstance(output, dict) else output.loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            running += loss.item()
            count += 1
            examples_seen += len(batch_indices)
            elapsed = time.perf_counter() - started
            bar.set_postfix(loss=f"{running / count:.4f}", ex_s=f"{examples_seen / max(elapsed, 1e-9):.1f}")
            if settings.max_steps and state["step"] >= settings.max_steps:
                break
        bar.close()
        epoch_seconds = time.perf_counter() - started
        examples_seen = 0
        metric, metrics = evaluate(model)
        record = {"epoch": epoch, "train_loss": running / max(count, 1), "epoch_seconds": epoch_seconds, **metrics}
        state["history"].append(record)
        state["seconds"] += epoch_seconds
        improved = metric > state["best_metric"] + 1e-6
        if improved:
            state.update(best_metric=metric, best_epoch=epoch, stale=0)
            torch.save(model.state_dict(), checkpoint_dir / BEST_FILE)
        else:
            state["stale"] += 1
        state["epoch"] = epoch
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": _plain(state),
            },
            last,
        )
        log.info(
            "epoch=%d loss=%.4f dev_metric=%.4f best=%.4f@%d seconds=%.1f",
            epoch,
            record["train_loss"],
            metric,
            state["best_metric"],
            state["best_epoch"],
            epoch_seconds,
        )
        if on_epoch is not None:
            on_epoch(epoch, record)

    if (checkpoint_dir / BEST_FILE).is_file():
        model.load_state_dict(torch.load(checkpoint_dir / BEST_FILE, map_location=device, weights_only=True))
    trained_examples = min(state["step"] * settings.batch_size, len(features) * len(state["history"]))
    return FitResult(
        state["best_metric"],
        state["best_epoch"],
        state["history"],
        state["seconds"],
        state["step"],
        trained_examples / max(state["seconds"], 1e-9),
    )
