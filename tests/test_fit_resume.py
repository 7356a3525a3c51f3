"""The training loop's checkpoint + resume on a toy model (many batches per epoch): a run interrupted after an
epoch and resumed equals an uninterrupted one, and a resume with more epochs follows the new schedule."""

from __future__ import annotations

import contextlib
import itertools
import logging
from pathlib import Path

import torch
from training_helpers import Interrupted, same_weights

from frontwire.train.loop import LoopSettings, fit


class Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.dropout = torch.nn.Dropout(0.3)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, input_ids, attention_mask, labels=None):
        mask = attention_mask.unsqueeze(-1).float()
        logits = self.head(self.dropout((self.embed(input_ids) * mask).sum(1) / mask.sum(1)))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        return out


_TICK = itertools.count()


def toy_fit(folder: Path, epochs: int, resume: bool = False, stop_after: int | None = None, batch_size: int = 5) -> Toy:
    generator = torch.Generator().manual_seed(0)
    features = [
        {
            "input_ids": torch.randint(
                1, 50, (int(torch.randint(2, 9, (1,), generator=generator)),), generator=generator
            ).tolist(),
            "labels": torch.randint(0, 2, (3,), generator=generator).float().tolist(),
        }
        for _ in range(24)
    ]
    torch.manual_seed(1)
    model = Toy()
    settings = LoopSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=1e-2,
        head_learning_rate=1e-2,
        weight_decay=0.01,
        warmup_ratio=0.1,
        early_stopping_patience=5,
        seed=3,
    )

    def stop(epoch: int, _record: dict) -> None:
        if stop_after is not None and epoch >= stop_after:
            raise Interrupted

    with contextlib.suppress(Interrupted):  # the metric always improves: the last epoch's weights are kept
        fit(
            model,
            features,
            settings,
            lambda m: (float(next(_TICK)), {}),
            folder,
            pad_id=0,
            label_pad=None,
            head_prefixes=("head.",),
            device=torch.device("cpu"),
            resume=resume,
            on_epoch=stop,
        )
    return model


def test_fit_resumed_after_an_interruption_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    full = toy_fit(tmp_path / "full", epochs=2)
    toy_fit(tmp_path / "resumed", epochs=2, stop_after=1)
    resumed = toy_fit(tmp_path / "resumed", epochs=2, resume=True)
    assert same_weights(full.state_dict(), resumed.state_dict())


def test_fit_resumed_with_more_epochs_continues_on_the_new_schedule(tmp_path: Path, caplog) -> None:
    """`epochs=1`, then `--resume` with `epochs=2`: the first run's linear schedule ended at learning rate 0, and
    that rate must not leak into the continued run (it used to: its first step did nothing). One batch per
    epoch, so epoch 2 is that one step."""
    first = {k: v.clone() for k, v in toy_fit(tmp_path, epochs=1, batch_size=24).state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="frontwire.train.loop"):
        continued = toy_fit(tmp_path, epochs=2, resume=True, batch_size=24)
    assert "different schedule length" in caplog.text
    assert not torch.equal(first["head.weight"], continued.state_dict()["head.weight"])
