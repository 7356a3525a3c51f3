"""The ONNX Runtime backend against torch on the tiny models: fp32 labels and entities identical, int8 sane."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from frontwire.paths import sample_export
from frontwire.predictor import BACKENDS, EntityModel, Predictor, TopicModel
from frontwire.schema import load_schema
from frontwire.serve.onnx_backend import OnnxForward, export_onnx
from frontwire.serve.onnx_fusion import fuse


@pytest.fixture(scope="module")
def texts() -> list[str]:
    tasks = json.loads(sample_export().read_text(encoding="utf-8"))
    # real paragraphs, plus the awkward ones: longer than one window, emoji, control characters, one word
    return [t["data"]["text"] for t in tasks[:40]] + [
        "Russia struck Odesa with Shahed drones. " * 40, "Kyiv 🚀 Lviv", "a\x00b\u200b\u202e c", "Zelenskyy"]


def test_onnx_fp32_gives_the_torch_labels_and_entities(tiny_models, texts) -> None:
    torch_topics = TopicModel.load(tiny_models.classifier_dir, "cpu")
    onnx_topics = TopicModel.load(tiny_models.classifier_dir, "cpu", backend="onnx", threads=2)
    assert isinstance(onnx_topics.forward, OnnxForward) and onnx_topics.forward.threads == 2
    torch_scores, onnx_scores = torch_topics.scores(texts), onnx_topics.scores(texts)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-4)
    assert [torch_topics.decode(s) for s in torch_scores] == [onnx_topics.decode(s) for s in onnx_scores]

    torch_entities = EntityModel.load(tiny_models.ner_dir, "cpu").entities(texts)
    onnx_entities = EntityModel.load(tiny_models.ner_dir, "cpu", backend="onnx").entities(texts)
    strip = [[(e["start"], e["end"], e["label"]) for e in spans] for spans in torch_entities]
    assert strip == [[(e["start"], e["end"], e["label"]) for e in spans] for spans in onnx_entities]


def test_onnx_int8_is_smaller_and_stays_close(tiny_models, texts) -> None:
    fp32 = export_onnx(tiny_models.classifier_dir, "fp32")
    int8 = export_onnx(tiny_models.classifier_dir, "int8")
    assert int8.stat().st_size < 0.8 * fp32.stat().st_size
    schema = load_schema()
    reference = Predictor(tiny_models.classifier_dir, tiny_models.ner_dir, device="cpu").predict(texts)
    quantized = Predictor(tiny_models.classifier_dir, tiny_models.ner_dir, backend="onnx-int8").predict(texts)
    for want, got, text in zip(reference, quantized, texts, strict=True):
        assert set(got["labels"]) <= set(schema.topic_names)
        # the tiny model's scores sit near 0.5, so labels may flip; the scores themselves must stay close
        assert max(abs(want["scores"][k] - got["scores"][k]) for k in want["scores"]) < 0.1
        assert all(text[e["start"] : e["end"]] == e["text"] for e in got["entities"])


def test_export_fuses_every_attention_layer(tiny_models) -> None:
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(tiny_models.ner_dir).num_hidden_layers
    export_onnx(tiny_models.ner_dir, "int8")
    manifest = json.loads((tiny_models.ner_dir / "onnx" / "manifest.json").read_text())
    assert manifest["fused_ops"]["Attention"] == layers
    assert manifest["files"] == {"fp32": "model.fp32.onnx", "int8": "model.int8.onnx"}
    assert not list((tiny_models.ner_dir / "onnx").glob("*.plain.onnx"))  # the unfused graph is not left behind


def test_fusion_of_a_graph_without_attention_keeps_the_plain_graph(tmp_path: Path, caplog) -> None:
    import logging

    import onnx
    from onnx import TensorProto, helper

    # logits = float(input_ids) * 2: a valid model with the exported inputs, but nothing to fuse
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["ids_float"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["ids_float", "two"], ["logits"])],
        "no-attention",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence"])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    source = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    target = tmp_path / "fused.onnx"
    caplog.set_level(logging.WARNING)
    assert fuse(source, target, num_heads=12, hidden_size=384, vocab_size=30522) == {}
    assert not target.exists()
    # said, not swallowed by the optimizer's muted root logger
    assert "onnx_fusion skipped=no attention pattern matched" in caplog.text


def test_logit_check_tells_a_changed_graph_from_the_same_one(tiny_models, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    from frontwire.serve.onnx_fusion import MAX_LOGIT_DIFF, max_logit_difference

    config = json.loads((tiny_models.ner_dir / "config.json").read_text())
    vocab, head_shape = config["vocab_size"], [config["hidden_size"], len(config["id2label"])]
    graph = export_onnx(tiny_models.ner_dir, "fp32")
    assert max_logit_difference(graph, graph, vocab) == 0.0
    model = onnx.load(str(graph))
    head = [t for t in model.graph.initializer if list(t.dims) == head_shape]  # the exporter renames weights
    assert head, [t.name for t in model.graph.initializer][-6:]
    for tensor in head:  # the token-classification head, 1 % off: what a broken fusion could look like
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 1.01, tensor.name))
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    assert max_logit_difference(graph, changed, vocab) > MAX_LOGIT_DIFF


def test_fused_graph_with_differing_logits_is_dropped_for_the_plain_one(
    tiny_models, texts, tmp_path: Path, monkeypatch, caplog
) -> None:
    import logging

    import onnx

    from frontwire.serve import onnx_fusion

    model_dir = tmp_path / "classifier"
    shutil.copytree(tiny_models.classifier_dir, model_dir, ignore=shutil.ignore_patterns("checkpoints", "onnx"))
    # the real fused graph differs from the plain one by ~1e-6; a bound below that makes the check refuse it
    monkeypatch.setattr(onnx_fusion, "MAX_LOGIT_DIFF", -1.0)
    caplog.set_level(logging.WARNING)
    graph = export_onnx(model_dir, "int8")
    assert "onnx_fusion skipped=fused logits differ" in caplog.text
    manifest = json.loads((model_dir / "onnx" / "manifest.json").read_text())
    assert not manifest["fused_ops"]
    assert not list((model_dir / "onnx").glob("*.plain.onnx"))
    for name in manifest["files"].values():  # neither precision carries a fused op
        ops = {node.op_type for node in onnx.load(str(model_dir / "onnx" / name)).graph.node}
        assert "Attention" not in ops and "SkipLayerNormalization" not in ops, (name, sorted(ops))
    assert graph.exists()
    torch_topics = TopicModel.load(model_dir, "cpu")
    plain_topics = TopicModel.load(model_dir, "cpu", backend="onnx")
    np.testing.assert_allclose(plain_topics.scores(texts), torch_topics.scores(texts), atol=1e-4)


def test_export_is_cached_and_redone_when_the_weights_change(tiny_models, tmp_path: Path) -> None:
    model_dir = tmp_path / "classifier"
    shutil.copytree(tiny_models.classifier_dir, model_dir, ignore=shutil.ignore_patterns("checkpoints", "onnx"))
    first = export_onnx(model_dir, "fp32")
    assert first.parent == model_dir / "onnx"
    stamp = first.stat().st_mtime_ns
    assert export_onnx(model_dir, "fp32").stat().st_mtime_ns == stamp  # fresh cache: not exported again
    weights = model_dir / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert export_onnx(model_dir, "fp32").stat().st_mtime_ns != stamp  # new weights: exported again


def test_unknown_backend_is_refused(tiny_models) -> None:
    assert BACKENDS == ("torch", "onnx", "onnx-int8")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        TopicModel.load(tiny_models.classifier_dir, "cpu", backend="tensorrt")
