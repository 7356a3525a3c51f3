"""Self-training (`self_training` in configs/classifier.yaml): which archive paragraphs a teacher pseudo-labels,
and that a classifier run trains on them and records them in MLflow."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from frontwire.modeling import pick_device
from frontwire.predictor import TopicModel
from frontwire.records import Record, read_records
from frontwire.schema import load_schema
from frontwire.serve.onnx_backend import OnnxForward
from frontwire.train.classifier import train_classifier
from frontwire.train.data import load_split_data
from frontwire.train.self_training import confident_labels, load_teacher, pseudo_label, select_balanced
from frontwire.train.settings import SelfTrainingSection, load_classifier_config

ARCHIVE_PARAGRAPHS = [
    "Russian drones struck a power substation in Odesa overnight, cutting electricity to 40,000 homes.",
    "The foreign ministers of France and Germany met in Kyiv to discuss the next round of talks.",
    "Brussels froze the assets of three more Russian banks under the new sanctions package.",
    "Ukrainian troops recaptured two villages south of Bakhmut, the general staff said.",
    "Sign up for our morning newsletter to get the latest updates in your inbox.",
    "Shelling continued along the front line near Avdiivka throughout the day.",
    "The weather in the capital was cold and grey, with light snow expected by evening.",
    "Prices of grain on world markets rose after the announcement.",
]


def test_a_paragraph_is_kept_only_when_every_label_clears_its_threshold_by_the_margin() -> None:
    labels = ["a", "b"]
    thresholds = {"a": 0.5, "b": 0.2}
    scores = np.array(
        [
            [0.99, 0.01],  # far on both sides: kept, a positive
            [0.99, 0.25],  # b sits next to its own threshold (0.2), not next to 0.5: dropped
            [0.03, 0.90],  # kept, b positive
            [0.60, 0.01],  # a too close to 0.5: dropped
        ],
        dtype=np.float32,
    )
    keep, positive, confidence = confident_labels(scores, labels, thresholds, margin=2.0)
    assert keep.tolist() == [True, False, True, False]
    # smallest logit distance over labels: row 0's b (logit 0.01 - logit 0.2), row 1's b (logit 0.25 - logit 0.2)
    assert confidence == pytest.approx([3.2088, 0.2877, 3.4761, 0.4055], abs=1e-3)
    assert positive[keep].tolist() == [[True, False], [False, True]]
    # margin 0 keeps everything; positives are exactly "score above threshold"
    keep_all, positive_all, _ = confident_labels(scores, labels, thresholds, margin=0.0)
    assert keep_all.all()
    assert positive_all.tolist() == (scores > np.array([0.5, 0.2])).tolist()


def test_balanced_selection_caps_each_label_by_its_gold_count_and_keeps_the_gold_empty_share() -> None:
    def rec(i: int, labels: list[str]) -> Record:
        return Record(id=f"r{i}", text=f"paragraph {i}", labels=labels)

    gold = [rec(0, ["a"]), rec(1, ["a"]), rec(2, ["b"]), rec(3, []), rec(4, ["a", "b"]), rec(5, [])]  # a:3 b:2
    candidates = [rec(10 + i, ["a"]) for i in range(6)] + [rec(20, ["a", "b"]), rec(21, ["b"])]
    candidates += [rec(30 + i, []) for i in range(5)]
    confidence = [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 8.5, 1.0, 3.0, 3.5, 2.0, 2.5, 0.5]
    chosen = select_balanced(candidates, confidence, gold, ["a", "b"], label_ratio=1.0, max_records=None)
    ids = {r.id for r in chosen}
    # a: the 3 most confident a-carrying candidates (r10, r20, r11); b: r20 and r21 (cap 2)
    assert {"r10", "r20", "r11", "r21"} <= ids
    assert sum("a" in r.labels for r in chosen) == 3 and sum("b" in r.labels for r in chosen) == 2
    # gold is 2/6 empty: 4 topic paragraphs → round(4 * (1/3) / (2/3)) = 2 empties, the most confident ones
    assert {r.id for r in chosen if not r.labels} == {"r31", "r30"}
    assert [r.id for r in chosen] == [r.id for r in candidates if r.id in ids]  # candidates' order kept
    top = select_balanced(candidates, confidence, gold, ["a", "b"], label_ratio=None, max_records=2)
    assert [r.id for r in top] == ["r10", "r20"]


@pytest.fixture(scope="module")
def teacher(tiny_models) -> TopicModel:
    return TopicModel.load(tiny_models.classifier_dir)


def test_the_teacher_runs_on_onnx_on_cpu_with_torchs_scores(tiny_models, teacher) -> None:
    settings = SelfTrainingSection(enabled=True, teacher=str(tiny_models.classifier_dir))
    auto_teacher = load_teacher(settings, "frontwire-classifier", tiny_models.tracking_uri)
    assert isinstance(auto_teacher.forward, OnnxForward) == (pick_device().type == "cpu")
    np.testing.assert_allclose(auto_teacher.scores(ARCHIVE_PARAGRAPHS), teacher.scores(ARCHIVE_PARAGRAPHS), atol=1e-4)
    torch_teacher = load_teacher(settings.model_copy(update={"backend": "torch"}), "frontwire-classifier", None)
    assert not isinstance(torch_teacher.forward, OnnxForward)


def test_pseudo_labels_leave_out_gold_texts_and_match_the_teachers_decoding(tiny_models, teacher) -> None:
    gold = read_records(tiny_models.data_dir / "records.jsonl", load_schema())
    gold_text = gold[0].text
    # a gold paragraph re-flowed with other whitespace is still a gold paragraph
    paragraphs = [*ARCHIVE_PARAGRAPHS, "  ".join(gold_text.split(" "))]
    records = pseudo_label(teacher, paragraphs, gold, SelfTrainingSection(enabled=True, margin=0.0, label_ratio=None))

    texts = [r.text for r in records]
    assert gold_text not in texts and paragraphs[-1] not in texts
    assert set(texts) <= set(ARCHIVE_PARAGRAPHS)
    scores = teacher.scores(texts) if texts else np.zeros((0, len(teacher.meta.labels)))
    for record, row in zip(records, scores, strict=True):
        assert record.labels == teacher.decode(row)
        assert record.meta == {"pseudo_label": True, "teacher": teacher.meta.name}
    # label-less paragraphs are sub-sampled to (at most) their share among the gold records
    gold_share = np.mean([not r.labels for r in gold])
    with_topic = sum(bool(r.labels) for r in records)
    assert sum(not r.labels for r in records) <= round(with_topic * gold_share / (1 - gold_share))

    nothing = pseudo_label(teacher, ARCHIVE_PARAGRAPHS, gold, SelfTrainingSection(enabled=True, margin=50.0))
    assert nothing == []


def test_a_classifier_run_trains_on_pseudo_labels_and_logs_them(tiny_models, tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl.gz"
    with gzip.open(archive, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "a1", "text": "\n\n".join(ARCHIVE_PARAGRAPHS)}) + "\n")
    schema = load_schema()
    data = load_split_data(tiny_models.data_dir, schema, limit=12)
    config = load_classifier_config(
        None,
        (
            "training.epochs=1",
            "training.max_steps=1",
            "training.batch_size=8",
            "ensemble.lexical=false",
            "mlflow.baseline=false",
            "mlflow.register=false",
            f"mlflow.tracking_uri={tiny_models.tracking_uri}",
            f"output.dir={tmp_path / 'student'}",
            "self_training.enabled=true",
            f"self_training.teacher={tiny_models.classifier_dir}",
            f"self_training.archives={json.dumps([str(archive)])}",
            "self_training.margin=0.0",
        ),
    )
    outcome = train_classifier(config, schema, data, run_name="student")

    dataset = json.loads((outcome.model_dir / "frontwire.json").read_text())["dataset"]
    assert dataset["pseudo_size"] >= 1
    assert dataset["pseudo_teacher"] == "tiny-classifier"
    run = MlflowClient(tiny_models.tracking_uri).get_run(outcome.run_id)
    assert run.data.params["data.pseudo_size"] == str(dataset["pseudo_size"])
    contexts = {tag.value for inp in run.inputs.dataset_inputs for tag in inp.tags if tag.key == "mlflow.data.context"}
    assert contexts >= {"train", "dev", "pseudo"}
    # the gold fingerprint is unchanged: promotion still compares on the same dev data
    assert dataset["fingerprint"] == data.fingerprint


def test_a_teacher_with_other_labels_is_refused(tiny_models, tmp_path: Path) -> None:
    from frontwire.train.self_training import pseudo_records

    archive = tmp_path / "archive.txt"
    archive.write_text("\n\n".join(ARCHIVE_PARAGRAPHS), encoding="utf-8")
    settings = SelfTrainingSection(enabled=True, teacher=str(tiny_models.classifier_dir), archives=[str(archive)])
    data = load_split_data(tiny_models.data_dir, load_schema(), limit=4)
    with pytest.raises(ValueError, match="must share the student's labels"):
        pseudo_records(settings, data, ["strike", "ceasefire"], "frontwire-classifier", tiny_models.tracking_uri)
    assert pseudo_records(settings.model_copy(update={"enabled": False}), data, [], "x", None) == []
