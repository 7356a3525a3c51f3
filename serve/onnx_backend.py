"""ONNX Runtime backend: export a model dir's torch model once, then run it as a `Forward` callable.

Exports live in a cache folder inside the model dir (`onnx/`), or under the working folder when the model dir
is read-only. A manifest records what the export was made from (weights size and mtime, config, torch and
opset versions); a stale or half-written export is made again instead of silently serving old weights.

The fp32 graph is fused into ONNX Runtime's transformer ops where that checks out (`onnx_fusion`). int8 is
ONNX Runtime's dynamic quantization of it: int8 weights, activations quantized per batch at run time. No
calibration data is needed, and on AVX2/AVX-512 CPUs the MatMuls run on integer kernels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from frontwire.modeling import WEIGHTS_FILE, ModelMeta, load_classifier, load_tagger
from frontwire.paths import work_dir

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
CACHE_DIR = "onnx"
MANIFEST = "manifest.json"
OPSET = 17
# Both in the manifest: a change here redoes old exports
GRAPH = "eager-attention+ort-bert-fusion"
QUANTIZATION = "dynamic-qint8-per_channel-reduce_range-attention"
INPUTS = ("input_ids", "attention_mask")


def precision_for(backend: str) -> Precision:
    """The ONNX file a predictor backend name runs: `onnx-int8` → int8, `onnx` → fp32."""
    return "int8" if backend == "onnx-int8" else "fp32"


def _fingerprint(model_dir: Path) -> dict[str, object]:
    import torch

    weights = (model_dir / WEIGHTS_FILE).stat()
    config = (model_dir / "config.json").read_bytes()
    return {"weights_size": weights.st_size, "weights_mtime_ns": weights.st_mtime_ns,
            "config_sha1": hashlib.sha1(config).hexdigest(), "torch": torch.__version__, "opset": OPSET,
            "graph": GRAPH, "quantization": QUANTIZATION}


def cache_folder(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """`cache_dir`, else `<model_dir>/onnx`, else (read-only model dir) a folder under the working folder."""
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return Path(cache_dir)
    inside = Path(model_dir) / CACHE_DIR
    try:
        inside.mkdir(exist_ok=True)
        if os.access(inside, os.W_OK):
            return inside
    except OSError:
        pass
    key = hashlib.sha1(str(Path(model_dir).resolve()).encode()).hexdigest()[:16]
    fallback = work_dir() / "onnx-cache" / key
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _logits_module(model_dir: Path, meta: ModelMeta):
    import torch

    eager = "eager"  # the attention pattern `onnx_fusion` knows; SDPA exports as one opaque block
    inner = (load_classifier(model_dir, meta, eager) if meta.kind == "classifier"
             else load_tagger(model_dir, eager))

    class Logits(torch.nn.Module):
        """Plain tensor out: the exporter flattens dicts/ModelOutputs unpredictably across versions."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            return out["logits"] if isinstance(out, dict) else out.logits

    return Logits().eval()


def _export_fp32(model_dir: Path, meta: ModelMeta, target: Path) -> dict[str, int]:
    """Export, then fuse; returns the fused op counts (empty: the plain export is kept)."""
    import torch

    from frontwire.serve.onnx_fusion import fuse

    module = _logits_module(model_dir, meta)
    plain = target.with_suffix(".plain.onnx")
    # Two rows of different length, so the traced graph keeps the padding-mask path general.
    ids = torch.full((2, 16), 101, dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 10:] = 0
    logits_axes = {0: "batch"} if meta.kind == "classifier" else {0: "batch", 1: "sequence"}
    # The tracer warns about Python conditions on shapes inside transformers' mask helpers; with a mask always
    # given they take one branch for every shape, and the fp32 tests check outputs on many lengths.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (ids, mask), str(plain), input_names=list(INPUTS), output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": logits_axes},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    config = module.inner.config
    fused = fuse(plain, target, config.num_attention_heads, config.hidden_size, config.vocab_size)
    if fused:
        plain.unlink()
    else:
        os.replace(plain, target)
    return fused


def _quantize(source: Path, target: Path, fused: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul/Gemm, and in a fused graph the Attention op, which holds the Q/K/V projections (a third of the
    # weights). Quantizing Gather (embeddings) costs accuracy for little speed.
    # per_channel + reduce_range: on AVX2 CPUs without VNNI the u8 x s8 kernel (VPMADDUBSW) saturates, and
    # one scale per weight matrix is coarse. Measured on the trained NER model (297 test paragraphs): plain
    # int8 lost 1.5 F1 points, this setting none (fused graph: 0.9105 vs torch 0.9093), at the same speed.
    root = logging.getLogger()
    level = root.level
    # The quantizer logs a root INFO line per tensor and advises pre-processing (its accuracy is measured instead).
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul", "Gemm", *(["Attention"] if fused else [])],
                         # shape inference does not know the fused com.microsoft ops' output types
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def export_onnx(model_dir: Path, precision: Precision = "fp32", cache_dir: Path | None = None,
                force: bool = False) -> Path:
    """Path of the (possibly freshly made) ONNX file for `model_dir` at `precision`."""
    model_dir = Path(model_dir)
    meta = ModelMeta.load(model_dir)
    # int8 is quantized from the fp32 file: make sure that exists (once, not forced again) before this
    # call reads the manifest, so the fp32 entry it writes is not overwritten by a stale copy below
    fp32 = export_onnx(model_dir, "fp32", cache_dir) if precision == "int8" else None
    folder = cache_folder(model_dir, cache_dir)
    fingerprint = _fingerprint(model_dir)
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if manifest.get("fingerprint") != fingerprint:
        manifest = {"fingerprint": fingerprint, "files": {}}
    target = folder / f"model.{precision}.onnx"
    if not force and manifest["files"].get(precision) == target.name and target.is_file():
        return target
    started = time.perf_counter()
    # Write beside the target, then rename: a reader (another server process) never sees half a file.
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp) / target.name
        if precision == "fp32":
            manifest["fused_ops"] = _export_fp32(model_dir, meta, staged)
        else:
            _quantize(fp32, staged, fused=bool(manifest.get("fused_ops")))
        os.replace(staged, target)
    manifest["files"][precision] = target.name
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("onnx_export model=%s kind=%s precision=%s fused=%s path=%s mb=%.1f seconds=%.1f", meta.name,
             meta.kind, precision, manifest.get("fused_ops") or "none", target, target.stat().st_size / 2**20,
             time.perf_counter() - started)
    return target


def default_threads() -> int:
    """Physical cores when known: a second hyper-thread per core adds contention, not speed, to GEMMs."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class OnnxForward:
    """`Forward` over an ONNX Runtime session: (ids, mask) int64 numpy → logits float32 numpy."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        # One request batch at a time runs through a model: parallelism is inside the ops, not across them.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning workers would keep the cores busy between batches and starve the HTTP event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.threads = options.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids.astype(np.int64, copy=False), "attention_mask": mask.astype(np.int64, copy=False)}
        return self.session.run(None, feed)[0]


def onnx_forward(model_dir: Path, precision: Precision = "fp32", threads: int | None = None,
                 cache_dir: Path | None = None) -> OnnxForward:
    return OnnxForward(export_onnx(Path(model_dir), precision, cache_dir), threads)
