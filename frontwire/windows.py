"""Texts as model windows: one fast-tokenizer call for all texts, long texts cut into overlapping windows
(never truncated), windows sorted by length and padded only to their batch's longest. Shared by inference
(frontwire.predictor) and training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Windows:
    """Tokenized windows of a batch of texts (a text longer than max_length has several)."""

    input_ids: list[list[int]]
    text_index: list[int]
    offsets: list[list[tuple[int, int]]]
    word_ids: list[list[int | None]]


def encode_windows(tokenizer, texts: Sequence[str], max_length: int, stride: int) -> Windows:
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True,
        return_offsets_mapping=True, padding=False,
    )
    mapping = encoded["overflow_to_sample_mapping"]
    word_ids = [encoded.word_ids(i) for i in range(len(encoded["input_ids"]))]
    return Windows(encoded["input_ids"], list(mapping), [list(map(tuple, o)) for o in encoded["offset_mapping"]],
                   word_ids)


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (optionally bounded by padded tokens per batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max(lengths[index], *(lengths[i] for i in current[-1:])) if current else lengths[index]
        too_many_tokens = max_tokens is not None and current and longest * (len(current) + 1) > max_tokens
        if current and (len(current) >= batch_size or too_many_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask


def run_windows(windows: Windows, forward: Forward, pad_id: int, batch_size: int) -> list[np.ndarray]:
    """Logits per window, in window order."""
    outputs: list[np.ndarray | None] = [None] * len(windows.input_ids)
    for batch in length_sorted_batches([len(ids) for ids in windows.input_ids], batch_size):
        ids, mask = pad_batch([windows.input_ids[i] for i in batch], pad_id)
        logits = forward(ids, mask)
        for row, index in enumerate(batch):
            outputs[index] = logits[row] if logits.ndim == 2 else logits[row, : len(windows.input_ids[index])]
    return outputs  # type: ignore[return-value]
