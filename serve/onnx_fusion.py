"""Fuse an exported encoder graph into ONNX Runtime's transformer kernels, and check the fused graph.

ONNX Runtime's own session optimizer does not recognise the attention subgraph the torch exporter writes;
its transformer optimizer (`onnxruntime.transformers.optimizer`, "bert" type: BERT, RoBERTa, ELECTRA, ...)
rewrites each layer into one `Attention`, `SkipLayerNormalization` and `BiasGelu` op. That only matches
the eager attention pattern, so the model is exported with `attn_implementation="eager"` (the same math as
SDPA). Measured against the unfused graphs on 2 cores, same process, medians of 5 alternating rounds
(bench/results/serve_onnx_2cores.json): fp32 ×1.04 (NER) and ×1.13 (classifier), int8 with the Attention
weights quantized too ×1.00 and ×1.11; test-split F1 unchanged (int8 within 0.12 points of torch).

A fusion that goes wrong is silent, so it is never trusted: the fused graph must give the unfused graph's
logits on a probe batch with padding, else the unfused graph is kept and a warning says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

OPTIMIZER_TYPE = "bert"  # the optimizer's name for encoder-only (BERT-like) graphs
MAX_LOGIT_DIFF = 1e-3  # fp32 kernels differ in summation order, not more


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def probe_batch(vocab_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three rows of different lengths, two of them padded: the mask path must survive the fusion."""
    rng = np.random.default_rng(seed)
    lengths = (40, 23, 7)
    ids = rng.integers(1000, max(1001, vocab_size), size=(len(lengths), max(lengths)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    ids[mask == 0] = 0
    return ids, mask


def max_logit_difference(first: Path, second: Path, vocab_size: int) -> float:
    """Largest logit difference of two graphs on the probe batch, padded positions left out."""
    ids, mask = probe_batch(vocab_size)
    feed = {"input_ids": ids, "attention_mask": mask}
    a, b = (_session(path).run(None, feed)[0] for path in (first, second))
    if a.shape != b.shape:
        return float("inf")
    if a.ndim == 3:  # per token: only real tokens count
        a, b = a[mask == 1], b[mask == 1]
    return float(np.abs(a - b).max())


def fuse(source: Path, target: Path, num_heads: int, hidden_size: int, vocab_size: int) -> dict[str, int]:
    """Write the fused graph of `source` to `target` and return the fused op counts; an empty dict means no
    fusion was kept and `target` is not written."""
    from onnxruntime.transformers.optimizer import optimize_model

    root = logging.getLogger()
    level = root.level
    # the optimizer logs each fusion at root WARNING/INFO; our own warnings come after the level is back
    root.setLevel(max(level, logging.ERROR))
    failure: Exception | None = None
    try:
        optimized = optimize_model(str(source), model_type=OPTIMIZER_TYPE, num_heads=num_heads,
                                   hidden_size=hidden_size, opt_level=0)
    except Exception as error:  # any optimizer failure means: serve the unfused graph
        optimized, failure = None, error
    finally:
        root.setLevel(level)
    if optimized is None:
        log.warning("onnx_fusion skipped=optimizer failed error=%r", failure)
        return {}
    fused = {op: count for op, count in optimized.get_fused_operator_statistics().items() if count}
    if not fused.get("Attention"):
        log.warning("onnx_fusion skipped=no attention pattern matched ops=%s", fused)
        return {}
    optimized.save_model_to_file(str(target))
    difference = max_logit_difference(source, target, vocab_size)
    if not difference <= MAX_LOGIT_DIFF:
        log.warning("onnx_fusion skipped=fused logits differ by %.2g (> %.0e)", difference, MAX_LOGIT_DIFF)
        target.unlink()
        return {}
    log.info("onnx_fusion ops=%s max_logit_diff=%.2g", fused, difference)
    return fused
