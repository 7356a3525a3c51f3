"""`frontwire evaluate` end to end: the real CLI on the tiny models (registered in a real SQLite MLflow store),
a real records folder with bad records injected, a real headless Chromium opening the report.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path

import lxml.html
import mlflow
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.evaluate.models import ModelSpecError, resolve_model
from frontwire.labeling.importer import RECORDS_FILE, SPLITS_FILE
from frontwire.modeling import ModelMeta
from frontwire.schema import load_schema

SCHEMA = load_schema()
TOPICS = [t for t in SCHEMA.topic_names if t not in SCHEMA.exclusive_topics]
ENT = SCHEMA.entity_names
REQUIRE_CHROMIUM_ENV = "FRONTWIRE_REQUIRE_CHROMIUM"
HOSTILE = '<script>alert("x")</script> & Kyiv'


def run_cli(*args: str) -> dict:
    result = CliRunner().invoke(app, ["evaluate", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data_with_bad_records(tiny_models, tmp_path_factory) -> Path:
    """The tiny records folder plus one record per kind of input problem, in the test split's article."""
    folder = tmp_path_factory.mktemp("eval-data")
    shutil.copy(tiny_models.data_dir / SPLITS_FILE, folder / SPLITS_FILE)
    groups = json.loads((folder / SPLITS_FILE).read_text())["groups"]
    article = next(group for group, split in groups.items() if split == "test")
    lines = (tiny_models.data_dir / RECORDS_FILE).read_text(encoding="utf-8").splitlines()

    def record(rid: str, text: str, labels: list[str], entities: list | None = None, art: str = article) -> str:
        return json.dumps(
            {"id": rid, "text": text, "labels": labels, "entities": entities or [], "meta": {"article_id": art}}
        )

    lines += [
        "{not json",  # invalid_record
        record("bad-label", "Talks resumed.", ["not-a-topic"]),  # unknown_label
        record("bad-exclusive", "Subscribe now.", [SCHEMA.exclusive_topics[0], TOPICS[0]]),  # exclusive_violated
        record("no-split", "Shells fell.", [TOPICS[0]], art="article-not-in-splits"),  # no_split
        record("bad-type", "Kyiv held.", [], [{"start": 0, "end": 4, "label": "NOT_A_TYPE"}]),  # NER only
        record("cut-word", "Zelenskyy spoke.", [], [{"start": 0, "end": 8, "label": ENT[0]}]),  # NER warning
        record("hostile", HOSTILE, TOPICS),
    ]
    (folder / RECORDS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def compared(tiny_models, data_with_bad_records, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval-compare")
    summary = run_cli(
        "--compare",
        "baseline:tfidf",
        "models:/frontwire-classifier@candidate",
        "--data",
        str(data_with_bad_records),
        "--out",
        str(out),
        "--tracking-uri",
        tiny_models.tracking_uri,
        "--bootstrap",
        "300",
        "--top",
        "1000",
        "--threads",
        "1",
    )
    return out, summary


def test_classifier_compare_with_baseline_writes_consistent_outputs(compared, tiny_models) -> None:
    out, summary = compared
    payload = json.loads((out / "metrics.json").read_text())
    assert set(payload) == {"format", "kind", "created_at", "data", "bootstrap", "models", "comparison"}
    assert payload["kind"] == "classifier" and set(payload["models"]) == {"a", "b"}
    assert payload["data"]["split"] == "test" and payload["bootstrap"]["n_resamples"] == 300
    assert payload["data"]["records"] > 1
    for side, result in payload["models"].items():
        assert result["timing"]["paragraphs"] == payload["data"]["records"]
        metrics, cis = result["metrics"], result["confidence_intervals"]
        assert set(metrics["per_label"]) == set(SCHEMA.topic_names)
        assert cis["micro_f1"]["value"] == pytest.approx(metrics["micro"]["f1"])
        assert cis["macro_f1"]["value"] == pytest.approx(metrics["macro"]["f1"])
        assert cis["exact_match"]["value"] == pytest.approx(metrics["exact_match"])
        for name, ci in cis.items():
            assert ci["low"] <= ci["value"] <= ci["high"], (side, name)
        assert set(result["calibration"]["per_label"]) == set(SCHEMA.topic_names)
        for plot in result["plots"].values():
            assert (out / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert payload["models"]["a"]["model"]["origin"] == "baseline"
    paired = payload["comparison"]["paired_bootstrap"]
    for name, c in paired.items():
        a = payload["models"]["a"]["confidence_intervals"][name]["value"]
        b = payload["models"]["b"]["confidence_intervals"][name]["value"]
        assert c["value"] == pytest.approx(b - a) and c["low"] <= c["value"] <= c["high"], name
    assert summary["b_minus_a"]["micro_f1"][0] == pytest.approx(round(paired["micro_f1"]["value"], 4))
    markdown = (out / "report.md").read_text()
    assert "## B − A (paired bootstrap)" in markdown and "| micro_f1 |" in markdown


def test_bad_records_are_reported_per_record_and_the_run_completes(compared, data_with_bad_records) -> None:
    out, _ = compared
    bad_line = (data_with_bad_records / RECORDS_FILE).read_text().splitlines().index("{not json") + 1
    issues = [json.loads(line) for line in (out / "input_errors.jsonl").read_text().splitlines()]
    by_reason = {i["reason"]: i for i in issues}
    assert set(by_reason) == {"invalid_record", "unknown_label", "exclusive_violated", "no_split"}
    assert by_reason["invalid_record"]["location"] == f"{data_with_bad_records / RECORDS_FILE}:{bad_line}"
    assert by_reason["unknown_label"]["record_id"] == "bad-label"
    assert "not-a-topic" in by_reason["unknown_label"]["detail"]
    assert all(i["severity"] == "error" for i in issues)
    data = json.loads((out / "metrics.json").read_text())["data"]
    assert data["input_errors"] == len(issues) == 4
    assert data["input_errors_by_reason"] == dict.fromkeys(sorted(by_reason), 1)


def test_evaluation_run_is_logged_to_mlflow_and_linked_to_the_model_version(compared, tiny_models) -> None:
    _, summary = compared
    client = MlflowClient(tracking_uri=tiny_models.tracking_uri)
    version = client.get_model_version_by_alias("frontwire-classifier", "candidate")
    run = client.get_run(summary["mlflow_run_id"])
    tags = run.data.tags
    assert tags["frontwire.kind"] == "evaluation"
    assert tags["frontwire.model.spec"] == "baseline:tfidf"
    assert (tags["frontwire.model_b.name"], tags["frontwire.model_b.version"], tags["frontwire.model_b.run_id"]) == (
        "frontwire-classifier",
        str(version.version),
        version.run_id,
    )
    # the evaluation sits in the experiment of the training run it evaluates
    assert run.info.experiment_id == client.get_run(version.run_id).info.experiment_id
    payload = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="metrics.json", tracking_uri=tiny_models.tracking_uri
            )
        ).read_text()
    )
    assert run.data.metrics["b_micro_f1"] == pytest.approx(
        payload["models"]["b"]["confidence_intervals"]["micro_f1"]["value"]
    )
    assert "diff_micro_f1_ci_low" in run.data.metrics
    # MLflow 3: the metrics also show on the registered version's logged model
    model_id = version.model_id or version.source.removeprefix("models:/")
    keys = {m.key for m in client.get_logged_model(model_id).metrics or []}
    assert "eval_test_micro_f1" in keys


def test_registry_and_run_uris_resolve_to_the_trained_model_dirs(tiny_models, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=tiny_models.tracking_uri)
    uri = tiny_models.tracking_uri
    models = (("frontwire-classifier", tiny_models.classifier_dir), ("frontwire-ner", tiny_models.ner_dir))
    for name, model_dir in models:
        version = client.get_model_version_by_alias(name, "candidate")
        expected = ModelMeta.load(model_dir)
        for spec in (f"models:/{name}@candidate", f"models:/{name}/{version.version}", f"runs:/{version.run_id}"):
            source = resolve_model(spec, uri, tmp_path / spec.replace("/", "_").replace(":", "_").replace("@", "_"))
            assert (source.kind, source.meta.name, source.run_id) == (expected.kind, expected.name, version.run_id)
            assert (source.model_dir / "model.safetensors").is_file()
            if spec.startswith("models:/"):
                assert (source.registered_name, source.version) == (name, str(version.version))
    for bad in (
        "models:/frontwire-classifier@no-such-alias",
        "models:/no-such-model/1",
        "runs:/0123456789abcdef",
        "models:/frontwire-classifier",
        str(tmp_path),
    ):
        with pytest.raises(ModelSpecError):
            resolve_model(bad, uri, tmp_path / "bad")


def test_ner_evaluation_from_a_run_uri(tiny_models, data_with_bad_records, tmp_path: Path) -> None:
    run_id = (
        MlflowClient(tracking_uri=tiny_models.tracking_uri)
        .get_model_version_by_alias("frontwire-ner", "candidate")
        .run_id
    )
    summary = run_cli(
        f"runs:/{run_id}",
        "--data",
        str(data_with_bad_records),
        "--out",
        str(tmp_path),
        "--tracking-uri",
        tiny_models.tracking_uri,
        "--bootstrap",
        "200",
        "--threads",
        "1",
    )
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert payload["kind"] == "ner" and payload["comparison"] is None and set(payload["models"]) == {"a"}
    result = payload["models"]["a"]
    counts, breakdown = result["error_breakdown"]["counts"], result["error_breakdown"]
    gold_side = sum(counts[k] for k in ("correct", "wrong_type", "wrong_boundary", "wrong_both", "missed"))
    assert gold_side == breakdown["gold_entities"]
    assert result["confidence_intervals"]["micro_f1"]["value"] == pytest.approx(result["metrics"]["micro"]["f1"])
    assert (tmp_path / "plots" / result["plots"]["entity_confusion"]).is_file()
    reasons = {
        json.loads(line)["reason"]: json.loads(line)
        for line in (tmp_path / "input_errors.jsonl").read_text().splitlines()
    }
    # topic problems do not matter to an NER evaluation; entity problems do
    assert set(reasons) == {"invalid_record", "no_split", "unknown_entity_type", "misaligned_span"}
    assert reasons["misaligned_span"]["severity"] == "warning" and reasons["misaligned_span"]["record_id"] == "cut-word"
    tags = MlflowClient(tracking_uri=tiny_models.tracking_uri).get_run(summary["mlflow_run_id"]).data.tags
    assert tags["frontwire.model.run_id"] == run_id and "frontwire.model.version" not in tags


def test_report_is_self_contained_and_escaped(compared) -> None:
    out, _ = compared
    page = (out / "report.html").read_text()
    assert page.count("<script>") == 1 and HOSTILE not in page  # ours is the only script
    listed = [
        r
        for result in json.loads((out / "metrics.json").read_text())["models"].values()
        for r in result["worst_misses"]
        if r["id"] == "hostile"
    ]
    if listed:  # a miss for at least one side (it is, unless a model predicts all its labels)
        assert html.escape(HOSTILE, quote=True) in page
    tree = lxml.html.fromstring(page)
    external = [v for v in tree.xpath("//@src | //@href") if not v.startswith("data:")]
    assert external == [] and "<link" not in page


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def dump_dom(page: Path, fragment: str, profile: Path) -> lxml.html.HtmlElement:
    executable = chromium()
    if executable is None:
        reason = "no chromium executable (Debian: apt-get install -y chromium)"
        if os.environ.get(REQUIRE_CHROMIUM_ENV) == "1":  # CI: a missing browser is a failure, not a skip
            pytest.fail(f"{REQUIRE_CHROMIUM_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    result = subprocess.run(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return lxml.html.fromstring(result.stdout)


def test_report_renders_in_headless_chromium_and_sorts_by_confidence(compared, tmp_path: Path) -> None:
    out, _ = compared
    payload = json.loads((out / "metrics.json").read_text())
    dom = dump_dom(out / "report.html", "#sort=confidence-asc", tmp_path / "profile")
    body = dom.xpath("//body")[0]
    assert body.get("data-ready") == "1"  # the script ran to its end without an error
    for side, result in payload["models"].items():
        rows = dom.xpath(f"//table[@id='misses-{side}']/tbody/tr")
        assert len(rows) == len(result["worst_misses"]) > 0
        shown = [float(row.xpath("./td[3]/@data-sort")[0]) for row in rows]
        assert shown == sorted(shown)  # the #sort fragment re-sorted the server's descending order
        ids = {row.xpath("./td[2]")[0].text_content() for row in rows}
        assert ids == {r["id"] for r in result["worst_misses"]}
    assert int(body.get("data-rows")) == sum(len(r["worst_misses"]) for r in payload["models"].values())
    assert len(dom.xpath("//img[starts-with(@src, 'data:image/png;base64,')]")) == 8


def test_label_studio_export_is_scored_on_the_same_test_split_as_training(tiny_models, tmp_path: Path) -> None:
    from frontwire.paths import sample_export

    run_cli(
        str(tiny_models.classifier_dir),
        "--data",
        str(sample_export()),
        "--out",
        str(tmp_path),
        "--no-mlflow",
        "--bootstrap",
        "50",
        "--threads",
        "1",
    )
    data = json.loads((tmp_path / "metrics.json").read_text())["data"]
    summary = json.loads((tiny_models.data_dir / "import_summary.json").read_text())
    assert data["format"] == "label_studio_export" and data["split"] == "test"
    assert (data["records"], data["fingerprint"]) == (
        summary["splits"]["test"]["records"],
        summary["splits"]["test"]["fingerprint"],
    )
    # tasks the import rejects (cancelled, unlabeled, duplicates) are this run's input errors, one line each
    assert data["input_errors"] == summary["errors"] > 0
    assert data["input_errors_by_reason"] == summary["errors_by_reason"]


def test_usage_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", "--compare", "baseline:tfidf", "--data", str(tmp_path), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "--compare needs two models" in result.output
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a model directory" in result.output
