"""No code runs from a model dir (issue #18).

Pickles whose unpickling would create a marker file are planted in a copy of the trained tiny models: in place
of every file in turn, as the old `lexical.joblib`, as extra `*.pkl` / torch files. The one gate every stage
loads through (ModelMeta.load) refuses each, naming the file, and real `frontwire predict`, `frontwire evaluate`,
a `frontwire serve` process, suggest's model loading and `mlflow.pyfunc.load_model` answer with that refusal:
the marker is never created. The TF-IDF blend round-trips as JSON + safetensors with the scores of sklearn's
pipeline; resume checkpoints load with weights_only and leave the model dir when training ends.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.labeling.scoring import load_models
from frontwire.lexical import LEXICAL_JSON, LEXICAL_WEIGHTS, LexicalFileError, LexicalScorer
from frontwire.metrics import multilabel_indicator
from frontwire.model_files import LEGACY_LEXICAL_FILE, UnsafeModelFileError, pickle_reason, refuse_unsafe_files
from frontwire.model_sources import ModelSourceError
from frontwire.modeling import META_FILE, MODEL_FORMAT, ModelMeta
from frontwire.predictor import Predictor, TopicModel
from frontwire.schema import load_schema
from frontwire.serve.loadtest import free_port
from frontwire.train.data import load_split_data
from frontwire.train.loop import CHECKPOINT_FILE, LoopSettings, fit
from frontwire.train.run_steps import CHECKPOINTS_SUFFIX, LEGACY_CHECKPOINTS, checkpoint_dir

SCHEMA = load_schema()


class Planted:
    """Unpickling this touches `marker`: the proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def pickle_payload(marker: Path, kind: int) -> Callable[[Path], None]:
    """Writers of the pickle flavours an attacker could plant: protocols 0–5 and torch.save's zip (data.pkl)."""
    if kind < 6:
        return lambda path: path.write_bytes(pickle.dumps(Planted(marker), protocol=kind))
    return lambda path: torch.save({"state": Planted(marker)}, path)


@dataclass
class Planting:
    classifier: Path
    ner: Path
    marker: Path
    planted: int = 0

    def check_no_execution(self) -> None:
        assert not self.marker.exists(), "a planted pickle was executed"


@pytest.fixture(scope="module")
def planting(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planting]:
    root = tmp_path_factory.mktemp("planted")
    copies = []
    for source in (tiny_models.classifier_dir, tiny_models.ner_dir):
        target = root / source.name
        # the ONNX cache another test may have exported is rebuilt on demand: no need to copy ~90 MB of it
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("onnx"))
        copies.append(target)
    marker = root / "EXECUTED"
    # the plant is live: unpickled, it does create a marker (elsewhere, so the real marker stays clean)
    control = root / "control-marker"
    for kind in range(6):
        pickle.loads(pickle.dumps(Planted(control), protocol=kind))
        assert control.exists()
        control.unlink()
    planting = Planting(copies[0], copies[1], marker)
    yield planting
    # the figure for the closing note (pytest -s shows it)
    print(f"\nplanted pickles: {planting.planted}, executions: {int(marker.exists())}")
    planting.check_no_execution()


def load_dir(model_dir: Path, kind: str = "classifier") -> None:
    """The one inference path (what predict, serve, evaluate, suggest and the pyfunc build) on `model_dir`."""
    Predictor(device="cpu", backend="torch", **{f"{kind}_dir": model_dir})


def test_trained_model_dirs_hold_no_pickle_and_no_checkpoints(tiny_models) -> None:
    for model_dir in (tiny_models.classifier_dir, tiny_models.ner_dir):
        refuse_unsafe_files(model_dir)  # every real file (safetensors, JSON, vocab, card, ONNX cache) passes
        assert ModelMeta.load(model_dir).format == MODEL_FORMAT == 2
        assert not (model_dir / LEGACY_CHECKPOINTS).exists() and not (model_dir / LEGACY_LEXICAL_FILE).exists()
        assert not checkpoint_dir(model_dir).exists(), "a finished run's checkpoints are removed"
        assert not any(p.suffix in (".pt", ".pkl", ".joblib", ".bin") for p in model_dir.rglob("*"))
    if ModelMeta.load(tiny_models.classifier_dir).lexical_weight > 0:
        assert (tiny_models.classifier_dir / LEXICAL_JSON).is_file()
        assert (tiny_models.classifier_dir / LEXICAL_WEIGHTS).is_file()


def test_a_pickle_in_place_of_every_file_is_refused_naming_it(planting: Planting) -> None:
    for kind, model_dir in (("classifier", planting.classifier), ("ner", planting.ner)):
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        assert {"config.json", "model.safetensors", META_FILE, "README.md"} <= {p.name for p in files}
        for index, path in enumerate(files):
            aside = path.with_name(path.name + ".aside")
            path.rename(aside)
            try:
                pickle_payload(planting.marker, index % 7)(path)
                planting.planted += 1
                with pytest.raises(UnsafeModelFileError, match="refused") as refused:
                    load_dir(model_dir, kind)
                assert str(path) in str(refused.value)
            finally:
                path.unlink()
                aside.rename(path)
        load_dir(model_dir, kind)  # restored: loads again
    planting.check_no_execution()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (LEGACY_LEXICAL_FILE, -1),  # joblib.dump, as format 1 wrote the blend
        ("extra.pkl", 2),
        ("pytorch_model.bin", 6),
        ("training_args.bin", 0),
        ("onnx/model.onnx", 4),  # in a subfolder, under a legitimate name
        ("scaler.pickle", 5),
    ],
)
def test_an_extra_pickle_is_refused_and_never_run(planting: Planting, name: str, kind: int) -> None:
    path = planting.classifier / name
    path.parent.mkdir(exist_ok=True)
    if kind < 0:
        joblib.dump(Planted(planting.marker), path)
    else:
        pickle_payload(planting.marker, kind)(path)
    planting.planted += 1
    try:
        with pytest.raises(UnsafeModelFileError) as refused:
            load_dir(planting.classifier)
        assert str(path) in str(refused.value) and "pickle" in str(refused.value)
        if name == LEGACY_LEXICAL_FILE:
            assert "Retrain the classifier" in str(refused.value)
    finally:
        path.unlink()
        if path.parent != planting.classifier and not any(path.parent.iterdir()):
            path.parent.rmdir()
    planting.check_no_execution()


def test_a_pickle_that_breaks_off_after_importing_is_refused(tmp_path: Path) -> None:
    """pickle.load calls what a stream imports before it reaches the garbage after it: refused as well."""
    path = tmp_path / "tokenizer.json"
    path.write_bytes(pickle.dumps(Planted(tmp_path / "m"), protocol=0)[:-1] + b"\x00 not a pickle any more")
    assert pickle_reason(path).startswith("pickle opcodes that import a callable")
    (tmp_path / "note.md").write_text("Note.", encoding="utf-8")  # decodes as opcodes, but its stack does not
    assert pickle_reason(tmp_path / "note.md") is None


@pytest.fixture(scope="module")
def legacy_classifier(planting: Planting) -> Path:
    """The realistic case: a classifier dir whose TF-IDF blend is a (planted) pickle, as format 1 stored it."""
    target = planting.classifier.with_name("legacy-classifier")
    shutil.copytree(planting.classifier, target)
    joblib.dump(Planted(planting.marker), target / LEGACY_LEXICAL_FILE)
    planting.planted += 1
    return target


def test_predict_and_evaluate_commands_refuse_with_exit_2(planting: Planting, legacy_classifier: Path, tiny_models,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTWIRE_HOME", str(tmp_path / "home"))
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "d1", "text": "Russian missiles hit Odesa overnight."}) + "\n")
    planted_ner = planting.ner / "extra.pkl"
    pickle_payload(planting.marker, 6)(planted_ner)
    planting.planted += 1
    runner = CliRunner()
    try:
        for flags, named in ((["--classifier", str(legacy_classifier), "--ner", "none"], LEGACY_LEXICAL_FILE),
                             (["--classifier", "none", "--ner", str(planting.ner)], "extra.pkl")):
            result = runner.invoke(app, ["predict", str(source), "--output", str(tmp_path / "out.jsonl"),
                                         "--no-progress", *flags])
            assert result.exit_code == 2, result.output
            assert named in result.output and "refused" in result.output
            assert not (tmp_path / "out.jsonl").exists()
        evaluated = runner.invoke(app, ["evaluate", str(legacy_classifier), "--data", str(tiny_models.data_dir),
                                        "--out", str(tmp_path / "eval"), "--no-mlflow", "--device", "cpu"])
        assert evaluated.exit_code == 2, evaluated.output
        assert LEGACY_LEXICAL_FILE in evaluated.output and "Retrain the classifier" in evaluated.output
    finally:
        planted_ner.unlink()
    planting.check_no_execution()


def test_serve_process_refuses_to_start_on_a_planted_dir(planting: Planting, legacy_classifier: Path,
                                                          tiny_models) -> None:
    exe = Path(sys.executable).with_name("frontwire")
    env = {**os.environ, "FRONTWIRE_HOME": str(tiny_models.home), "MLFLOW_TRACKING_URI": tiny_models.tracking_uri,
           "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([str(exe), "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--backend",
                             "torch", "--classifier", str(legacy_classifier), "--ner", str(tiny_models.ner_dir)],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{legacy_classifier / LEGACY_LEXICAL_FILE}: refused" in result.stderr
    planting.check_no_execution()


def test_suggest_model_loading_refuses(planting: Planting, legacy_classifier: Path) -> None:
    with pytest.raises(ModelSourceError, match=LEGACY_LEXICAL_FILE):
        load_models(classifier=str(legacy_classifier), device="cpu")
    planting.check_no_execution()


def test_pyfunc_of_a_logged_model_refuses_a_planted_pickle(planting: Planting, tiny_models, tmp_path: Path) -> None:
    local = Path(mlflow.artifacts.download_artifacts("models:/frontwire-classifier/1", dst_path=str(tmp_path),
                                                     tracking_uri=tiny_models.tracking_uri))
    model_dirs = [p.parent for p in local.rglob(META_FILE)]
    assert model_dirs, "the logged pyfunc carries the model dir as an artifact"
    for model_dir in model_dirs:
        joblib.dump(Planted(planting.marker), model_dir / LEGACY_LEXICAL_FILE)
        planting.planted += 1
    with pytest.raises(UnsafeModelFileError, match=LEGACY_LEXICAL_FILE):
        mlflow.pyfunc.load_model(str(local))
    planting.check_no_execution()


def test_lexical_blend_round_trips_as_json_and_safetensors(tiny_models, planting: Planting, tmp_path: Path) -> None:
    data = load_split_data(tiny_models.data_dir, SCHEMA)
    labels = SCHEMA.topic_names
    fitted = LexicalScorer(labels).fit([r.text for r in data.train],
                                       multilabel_indicator([r.labels for r in data.train], labels))
    texts = [r.text for r in data.dev + data.test] + ["", "Ünïcödé sanctions on Gazprom!", "strike " * 600]
    reference = np.zeros((len(texts), len(labels)))
    reference[:, fitted.present] = fitted.pipeline.predict_proba(texts)

    model_dir = tmp_path / "blend"
    shutil.copytree(planting.classifier, model_dir)
    fitted.save(model_dir)
    assert pickle_reason(model_dir / LEXICAL_JSON) is None and pickle_reason(model_dir / LEXICAL_WEIGHTS) is None
    stored = json.loads((model_dir / LEXICAL_JSON).read_text(encoding="utf-8"))
    assert stored["vectorizer"]["ngram_range"] == [1, 2] and len(stored["vocabulary"]) == len(fitted.vectorizer.idf_)
    loaded = LexicalScorer.load(model_dir, labels)
    np.testing.assert_allclose(loaded.scores(texts), reference, atol=1e-6, rtol=0)
    assert float(np.abs(reference).max()) > 0.5  # real scores, not a zero matrix compared with itself

    # through the one inference path: a classifier that blends it half and half
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    (model_dir / META_FILE).write_text(json.dumps({**meta, "lexical_weight": 0.5}), encoding="utf-8")
    topics = TopicModel.load(model_dir, "cpu")
    blended = topics.scores(texts)
    topics.lexical = None
    np.testing.assert_allclose(blended, 0.5 * topics.scores(texts) + 0.5 * reference, atol=1e-6, rtol=0)

    stored["labels"] = list(reversed(labels))
    (model_dir / LEXICAL_JSON).write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(LexicalFileError, match=LEXICAL_JSON):
        LexicalScorer.load(model_dir, labels)
    (model_dir / LEXICAL_WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not safetensors}")
    with pytest.raises(LexicalFileError, match="unreadable lexical scorer"):
        LexicalScorer.load(model_dir, labels)


def test_resume_never_unpickles_a_planted_checkpoint(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    folder = tmp_path / "run.checkpoints"
    folder.mkdir()
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "state": Planted(marker)}, folder / CHECKPOINT_FILE)
    settings = LoopSettings(epochs=1, batch_size=1, learning_rate=1e-3, head_learning_rate=1e-3, weight_decay=0.0,
                            warmup_ratio=0.0, early_stopping_patience=1, seed=1)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        fit(torch.nn.Linear(2, 1), [{"input_ids": [1, 2], "labels": [0.0]}], settings, lambda m: (0.0, {}), folder,
            pad_id=0, label_pad=None, head_prefixes=(), device=torch.device("cpu"), resume=True)
    assert not marker.exists()


def test_checkpoints_live_beside_the_model_dir_and_old_ones_move_there(tmp_path: Path) -> None:
    model_dir = tmp_path / "models" / "c1"
    assert checkpoint_dir(model_dir) == tmp_path / "models" / f"c1{CHECKPOINTS_SUFFIX}"
    (model_dir / LEGACY_CHECKPOINTS).mkdir(parents=True)
    (model_dir / LEGACY_CHECKPOINTS / CHECKPOINT_FILE).write_bytes(b"resume state")
    moved = checkpoint_dir(model_dir)
    assert (moved / CHECKPOINT_FILE).read_bytes() == b"resume state"
    assert not (model_dir / LEGACY_CHECKPOINTS).exists()
