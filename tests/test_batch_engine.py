"""`frontwire predict` end to end with the real tiny models: rows, offsets, errors, parallelism, kill -9 + resume."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.paragraphs import split_text
from frontwire.predictor import resolve_backend
from frontwire.schema import load_schema
from frontwire.serve.batch.engine import BatchError, iter_chunks, run
from frontwire.serve.batch.models import from_directory
from frontwire.serve.batch.runners import PredictorSpec
from frontwire.serve.batch.settings import RuntimeSection, load_predict_config
from frontwire.serve.batch.sources import SourceDoc, SourceError
from frontwire.serve.onnx_backend import OnnxForward

SENTENCES = ["Russian missiles struck Kyiv overnight, officials said.", "Zelenskyy met Macron in Paris on Monday.",
             "The EU agreed a new package of sanctions.", "Subscribe to our newsletter for daily updates.",
             "Ukrainian troops advanced near Bakhmut.", "NATO foreign ministers gathered in Brussels."]


def articles(count: int, paragraphs: int) -> list[dict[str, str]]:
    return [{"id": f"doc-{i:03d}", "text": "\n\n".join(f"{SENTENCES[(i + j) % len(SENTENCES)]} ({i}.{j})"
                                                     for j in range(paragraphs))} for i in range(count)]


def write_jsonl(path: Path, records: list[object]) -> Path:
    data = b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def registry_home(tiny_models, monkeypatch: pytest.MonkeyPatch):
    """The default store is the fixture's: `frontwire predict` without model options finds its models there."""
    monkeypatch.setenv("FRONTWIRE_HOME", str(tiny_models.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tiny_models


def test_predict_default_models_rows_offsets_errors(registry_home, tmp_path: Path) -> None:
    docs = articles(3, 3)
    archive = write_jsonl(tmp_path / "archive.jsonl.gz", [*docs, b"{not json", {"id": "blank", "text": "\n \n"}])
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "p.html").write_text("<html><body><nav>Home</nav><p>Kyiv under fire.</p></body></html>", "utf-8")
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(app, ["predict", str(archive), str(pages), "--output", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout[result.stdout.index("{"):])
    texts = {d["id"]: d["text"] for d in docs} | {"p.html": "Home\n\nKyiv under fire."}
    expected = [(doc_id, p.index) for doc_id, text in texts.items() for p in split_text(text)]
    rows = read_rows(out)
    assert [(r["doc_id"], r["paragraph_index"]) for r in rows] == expected  # input order, each once
    assert (counts["documents"], counts["paragraphs"], counts["errors"]) == (4, len(expected), 2)
    topics = set(load_schema().topic_names)
    for row in rows:
        assert texts[row["doc_id"]][row["start"]:row["end"]] == row["text"]
        assert set(row["labels"]) <= topics and set(row["scores"]) == topics
        assert row["classifier_version"].startswith("frontwire-classifier/")
        assert row["ner_version"].startswith("frontwire-ner/")
        for entity in row["entities"]:
            assert row["text"][entity["start"]:entity["end"]] == entity["text"]
    assert rows[0]["source"] == f"{archive}:1"
    errors = read_rows(Path(counts["errors_file"]))
    assert [(e["path"], e["line"]) for e in errors] == [(str(archive), 4), (str(archive), 5)]
    assert "invalid JSON" in errors[0]["reason"] and "has no text" in errors[1]["reason"]

    # the same job as JSONL, without text, in worker processes: identical predictions
    out_jsonl = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["predict", str(archive), str(pages), "--output", str(out_jsonl), "--no-text",
                                      "--parallelism", "processes", "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert read_rows(out_jsonl) == [{k: v for k, v in r.items() if k != "text"} for r in rows]
    again = CliRunner().invoke(app, ["predict", str(archive), "--output", str(out_jsonl), "--no-progress"])
    assert again.exit_code == 2 and "--resume" in again.output


def test_kill_9_then_resume_gives_every_paragraph_exactly_once(registry_home, tmp_path: Path) -> None:
    docs = articles(12, 3)  # 36 paragraphs in 9 shards of 4
    source = write_jsonl(tmp_path / "in.jsonl", docs)
    out = tmp_path / "out.jsonl"
    command = [str(Path(sys.executable).with_name("frontwire")), "predict", str(source), "--output", str(out),
               "--shard-size", "4", "--set", "runtime.chunk_size=2", "--no-progress"]
    env = {**os.environ, "FRONTWIRE_HOME": str(registry_home.home)}
    manifest = tmp_path / "out.jsonl.parts" / "manifest.json"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.is_file() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"finished or failed before it could be killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(json.loads(manifest.read_text())["shards"])
    assert not out.exists() and 2 <= finished < 9

    refused = CliRunner().invoke(app, ["predict", str(source), "--output", str(out), "--no-progress"])
    assert refused.exit_code == 2 and "--resume" in refused.output
    resumed = CliRunner().invoke(app, ["predict", str(source), "--output", str(out), "--resume", "--shard-size", "4",
                                       "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    counts = json.loads(resumed.stdout[resumed.stdout.index("{"):])
    assert counts["shards_skipped"] >= finished and counts["shards"] == 9
    assert counts["paragraphs_predicted"] == 36 - 4 * counts["shards_skipped"]
    keys = [(r["doc_id"], r["paragraph_index"], r["text"]) for r in read_rows(out)]
    expected = [(d["id"], p.index, p.text) for d in docs for p in split_text(d["text"])]
    assert keys == expected and len(set(keys)) == 36 == counts["paragraphs"]


def test_resume_refuses_changed_input_and_a_complete_run_is_not_redone(tiny_models, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", articles(1, 2))
    out = tmp_path / "out.parquet"
    models = (from_directory("classifier", tiny_models.classifier_dir), None)
    cfg = load_predict_config(None, ["output.shard_size=1"])
    first = run([source], out, cfg, models=models, progress=False)
    assert (first.paragraphs, first.shards, first.errors) == (2, 2, 0)
    assert "entities" not in pq.read_schema(out).names  # NER skipped: its columns are left out
    again = run([source], out, cfg, models=models, resume=True, progress=False)
    assert again == first
    write_jsonl(source, articles(2, 2))
    with pytest.raises(BatchError, match="inputs changed"):
        run([source], out, cfg, models=models, resume=True, progress=False)


def test_resume_refuses_a_folder_whose_files_changed_and_another_backend(tiny_models, tmp_path: Path) -> None:
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    nested = write_jsonl(folder / "sub" / "in.jsonl", articles(1, 2))
    out = tmp_path / "out.parquet"
    models = (from_directory("classifier", tiny_models.classifier_dir), None)
    cfg = load_predict_config(None, ["output.shard_size=1", "runtime.backend=torch"])
    run([folder], out, cfg, models=models, progress=False)
    int8 = load_predict_config(None, ["output.shard_size=1", "runtime.backend=onnx-int8"])
    with pytest.raises(BatchError, match="backend changed"):  # fp32 and int8 scores would share one output
        run([folder], out, int8, models=models, resume=True, progress=False)
    # a manifest from a frontwire that did not record the backend: what it lacks cannot be checked, the rest is
    manifest_path = out.with_name(out.name + ".parts") / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["fingerprint"]["backend"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert run([folder], out, int8, models=models, resume=True, progress=False).paragraphs == 2
    folder_mtime = folder.stat().st_mtime_ns
    write_jsonl(nested, articles(2, 2))  # an edit inside a subfolder leaves the top folder's mtime as it was
    assert folder.stat().st_mtime_ns == folder_mtime
    with pytest.raises(BatchError, match="inputs changed"):
        run([folder], out, cfg, models=models, resume=True, progress=False)


def test_shard_assignment_depends_only_on_input_order() -> None:
    items = [SourceDoc("a", "p0\n\np1\n\np2", "f", 1), SourceError("f", "bad", 2), SourceDoc("b", "q0\n\nq1", "f", 3),
             SourceDoc("c", "   ", "f", 4)]
    chunks = list(iter_chunks(iter(items), shard_size=2, chunk_size=1))
    layout = [(c.shard, [(u.doc_id, u.index) for u in c.paragraphs], [e["line"] for e in c.errors], c.documents)
              for c in chunks]
    assert layout == [(0, [("a", 0)], [], 1), (0, [("a", 1)], [], 0), (1, [("a", 2)], [2], 0),
                      (1, [("b", 0)], [], 1), (2, [("b", 1)], [4], 0)]
    assert [c.shard for c in iter_chunks(iter([]), 5, 5)] == [0]  # empty input still makes shard 0


def test_the_default_backend_is_onnx_on_cpu_and_exported_before_workers_start(tiny_models, tmp_path: Path) -> None:
    model_dir = tmp_path / "classifier"
    shutil.copytree(tiny_models.classifier_dir, model_dir, ignore=shutil.ignore_patterns("checkpoints", "onnx"))
    spec = PredictorSpec(model_dir, None, device="cpu")
    assert resolve_backend(spec.backend, spec.device) == "onnx" and RuntimeSection().backend == "auto"
    spec.prepare()
    assert (model_dir / "onnx" / "model.fp32.onnx").is_file()
    assert isinstance(spec.build().topics.forward, OnnxForward)
    torch_spec = PredictorSpec(model_dir, None, device="cpu", backend="torch")
    torch_spec.prepare()  # nothing to export for torch
    assert not isinstance(torch_spec.build().topics.forward, OnnxForward)


def test_predict_config_validates_and_names_bad_keys(tmp_path: Path) -> None:
    from frontwire.config import ConfigError

    cfg = load_predict_config(None, ["runtime.parallelism=processes", "output.shard_size=5"])
    assert (cfg.runtime.parallelism, cfg.output.shard_size, cfg.runtime.chunk_size) == ("processes", 5, 1024)
    with pytest.raises(ConfigError, match=r"runtime\.parallelism"):
        load_predict_config(None, ["runtime.parallelism=gpu"])
    with pytest.raises(ConfigError, match=r"output\.shards"):
        load_predict_config(None, ["output.shards=3"])
    missing = CliRunner().invoke(app, ["predict", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert missing.exit_code == 2 and "missing.jsonl does not exist" in missing.output
    source = write_jsonl(tmp_path / "in.jsonl", articles(1, 1))
    csv_out = CliRunner().invoke(app, ["predict", str(source), "--output", str(tmp_path / "o.csv")])
    assert csv_out.exit_code == 2 and "o.csv" in csv_out.output and ".parquet or .jsonl" in csv_out.output
