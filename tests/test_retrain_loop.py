"""The annotation loop against a real Label Studio server and a real SQLite MLflow store, on a tiny slice.

project seeded with the sample export (the labelled history) → `labeling suggest` with the champion models
(tasks arrive with predictions: model_version, scores; near-duplicates and annotated paragraphs skipped) →
the same suggest again imports nothing → annotators label the suggested tasks through the API →
`frontwire retrain --url … --project …` → new versions registered as candidate, compared with the champion on
the fixed test split, promotion decided with a reason; old articles kept their split.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from frontwire.documents import content_hash
from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.ls_results import to_label_studio_result
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import sample_export
from frontwire.records import read_records
from frontwire.schema import load_schema

pytestmark = [pytest.mark.label_studio, pytest.mark.slow]

SCHEMA = load_schema()
LABELING = load_labeling_config()
NAMES = {"classifier": "frontwire-classifier", "ner": "frontwire-ner"}
TOP = 4

# paragraph → what the annotator marks: (topics, [(surface, entity type)])
WIRE = "Air defence units shot down 14 of 17 Shahed drones over the Odesa region, the Ukrainian air force said."
PLAN: dict[str, tuple[list[str], list[tuple[str, str]]]] = {
    "Russian missiles struck an energy facility near Lviv overnight, governor Maksym Kozytskyi said on Telegram.":
        (["strike"], [("Lviv", "LOC"), ("Maksym Kozytskyi", "PER")]),
    WIRE: (["strike"], [("Shahed drones", "WEAPON"), ("Odesa", "LOC")]),
    "KYIV (Reuters) - " + WIRE: (["strike"], [("KYIV", "LOC"), ("Reuters", "ORG"), ("Shahed drones", "WEAPON"),
                                              ("Odesa", "LOC")]),
    "Sign up for our morning briefing newsletter and get the war explained.": (["boilerplate"], []),
    "Foreign ministers of Poland and Lithuania met in Vilnius to discuss further military aid for Kyiv.":
        (["diplomacy"], [("Poland", "LOC"), ("Lithuania", "LOC"), ("Vilnius", "LOC"), ("Kyiv", "LOC")]),
    "The European Union agreed a new package of sanctions targeting Russian oil exports and shadow fleet tankers.":
        (["sanctions"], [("European Union", "ORG")]),
    "Ukrainian troops pushed Russian forces back from two villages near Bakhmut, the general staff said on Monday.":
        (["advance"], [("Bakhmut", "LOC")]),
    "Russian forces advanced near Avdiivka as fighting intensified along the eastern front line.":
        (["advance"], [("Avdiivka", "LOC")]),
    "Zelensky thanked Germany for the latest delivery of Patriot air defence systems.":
        (["diplomacy"], [("Zelensky", "PER"), ("Germany", "LOC"), ("Patriot", "WEAPON")]),
    "Photographs by our staff; all rights reserved by the publisher.": (["boilerplate"], []),
}


def articles(annotated_text: str) -> list[dict[str, Any]]:
    texts = list(PLAN)
    return [
        {"id": "loop-a", "source": "looptest", "text": "\n\n".join([texts[0], WIRE, texts[3]])},
        {"id": "loop-b", "source": "looptest", "text": "\n\n".join([texts[4], texts[5], texts[9]])},
        # a syndicated copy of loop-a's second paragraph, and a paragraph the project already has annotated
        {"id": "loop-c", "source": "looptest", "text": "\n\n".join([texts[2], texts[6], annotated_text])},
        {"id": "loop-d", "source": "looptest", "text": "\n\n".join([texts[7], texts[8]])},
    ]


def seed_project(client: Any, title: str) -> tuple[int, list[dict[str, Any]]]:
    """The labelled history: the sample export's tasks with their annotations, in one import call."""
    tasks = json.loads(sample_export().read_text(encoding="utf-8"))
    project = client.projects.create(title=title, label_config=label_studio_config(SCHEMA, LABELING))
    payload = []
    for task in tasks:
        data = {**task["data"], "content_hash": content_hash(task["data"]["text"])}
        annotations = [{"result": a.get("result") or [], "was_cancelled": bool(a.get("was_cancelled")),
                        "ground_truth": bool(a.get("ground_truth"))} for a in task.get("annotations") or []]
        payload.append({"data": data, **({"annotations": annotations} if annotations else {})})
    client.projects.import_tasks(id=project.id, request=payload, return_task_ids=True)
    return project.id, tasks


def invoke(runner: CliRunner, server: Any, *args: str) -> str:
    from frontwire.cli import app

    result = runner.invoke(app, list(args), env={"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.token},
                           catch_exceptions=False)
    assert result.exit_code == 0, f"frontwire {' '.join(args)} failed:\n{result.output[-4000:]}"
    return result.stdout


def test_suggest_annotate_retrain(label_studio: Any, tiny_models: Any, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from label_studio_sdk import LabelStudio
    from mlflow.tracking import MlflowClient

    # an isolated copy of the session's store and records: this test moves aliases and adds versions
    home = tmp_path / "home"
    shutil.copytree(tiny_models.data_dir, home / "data")
    shutil.copy(tiny_models.home / "mlflow.db", home / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    monkeypatch.setenv("FRONTWIRE_HOME", str(home))
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champions = {}
    for kind, name in NAMES.items():
        version = registry.get_model_version_by_alias(name, "candidate").version
        registry.set_registered_model_alias(name, "champion", version)
        champions[kind] = str(version)
    model_version = f"{NAMES['classifier']}:v{champions['classifier']}+{NAMES['ner']}:v{champions['ner']}"
    previous_records = read_records(home / "data" / "records.jsonl")
    previous_groups = json.loads((home / "data" / "splits.json").read_text())["groups"]

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    title = f"frontwire loop {uuid.uuid4().hex[:8]}"
    project_id, _ = seed_project(client, title)
    seeded = len(list(client.tasks.list(project=project_id)))
    annotated_text = previous_records[0].text
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(json.dumps(a) + "\n" for a in articles(annotated_text)), encoding="utf-8")
    runner = CliRunner()

    # --- suggest: the top N, with pre-annotations from the champion models ---
    out = invoke(runner, label_studio, "labeling", "suggest", str(archive), "--top", str(TOP), "--project-title",
                 title, "--tracking-uri", uri, "--out", str(tmp_path / "suggested.jsonl"))
    assert "4 documents, 11 paragraphs, 11 unique; 1 already annotated" in out, out
    assert "1 near-duplicates dropped; 9 scored by " + model_version in out, out
    assert f"project {project_id}: {TOP} imported with predictions, 0 already there" in out, out
    suggested = [json.loads(line) for line in (tmp_path / "suggested.jsonl").read_text().splitlines()]
    assert len(suggested) == TOP
    values = [s["informativeness"] for s in suggested]
    assert values == sorted(values, reverse=True) and all(0 <= v <= 1 for v in values)

    tasks = [t for t in client.tasks.list(project=project_id, fields="all")
             if t.data.get("paragraph_id", "").startswith("loop-")]
    assert sorted(t.data["paragraph_id"] for t in tasks) == sorted(s["paragraph_id"] for s in suggested)
    assert not ({WIRE, "KYIV (Reuters) - " + WIRE} <= {t.data["text"] for t in tasks})  # one copy at most
    for task in tasks:
        [prediction] = client.predictions.list(task=task.id)
        assert prediction.model_version == model_version
        assert 0.0 <= prediction.score <= 1.0
        assert prediction.score == pytest.approx(1 - task.data["informativeness"], abs=1e-3)
        for item in prediction.result:
            assert 0.0 <= item["score"] <= 1.0
            if item["type"] == "labels":  # spans in the editor's units, over the task's own text
                assert task.data["text"][item["value"]["start"] : item["value"]["end"]] == item["value"]["text"]
        assert task.data["suggest_rank"] >= 1 and "topic_uncertainty" in task.data and "ner_uncertainty" in task.data

    # --- suggest again: nothing new (the ranked paragraphs are already queued) ---
    out = invoke(runner, label_studio, "labeling", "suggest", str(archive), "--top", str(TOP), "--project-title",
                 title, "--tracking-uri", uri)
    assert f"project {project_id}: 0 imported with predictions, {TOP} already there" in out, out
    assert len(list(client.tasks.list(project=project_id))) == seeded + TOP

    # --- annotators label the suggested tasks through the API ---
    for task in tasks:
        labels, spans = PLAN[task.data["text"]]
        entities = [{"start": task.data["text"].index(s), "end": task.data["text"].index(s) + len(s), "label": t}
                    for s, t in spans]
        result = to_label_studio_result(task.data["text"], labels, entities, topics_control=LABELING.topics_control,
                                        entities_control=LABELING.entities_control, to_name=LABELING.text_field)
        client.annotations.create(id=task.id, result=result, was_cancelled=False, ground_truth=True)

    # --- retrain from the live project ---
    tiny = ("training.epochs=1", "training.max_steps=2", "training.batch_size=8")
    args = ["retrain", "--url", label_studio.url, "--project", str(project_id), "--data-dir", str(home / "data"),
            "--tracking-uri", uri, "--limit", "24", "--bootstrap", "200", "--json"]
    for override in (*tiny, "mlflow.baseline=false", "ensemble.lexical=false"):
        args += ["--classifier-set", override]
    for override in tiny:
        args += ["--ner-set", override]
    summary = json.loads(invoke(runner, label_studio, *args))

    data = summary["data"]
    assert data["added"] == TOP and data["removed"] == 0
    assert data["records_before"] == len(previous_records)
    assert data["kept_groups"] == len(previous_groups) and data["moved_groups"] == 0  # old articles stay put
    assert data["new_groups"] == len({s["paragraph_id"].rsplit("-p", 1)[0] for s in suggested})
    splits = json.loads((home / "data" / "splits.json").read_text())["groups"]
    assert all(splits[g] == s for g, s in previous_groups.items())

    for kind, name in NAMES.items():
        entry = summary[kind]
        assert int(entry["version"]) > int(champions[kind])
        assert str(registry.get_model_version_by_alias(name, "candidate").version) == str(entry["version"])
        comparison = entry["test_comparison"]
        assert comparison["paragraphs"] > 0
        assert comparison["champion"]["model"].startswith(f"{name} v{champions[kind]}")
        for side in ("candidate", "champion"):
            interval = comparison[side]["intervals"]["micro_f1"]
            assert interval["low"] <= interval["value"] <= interval["high"]
        assert "prob_b_better" in comparison["difference"]["micro_f1"]
        decision = entry["decision"]
        assert decision["decision"] in ("promoted", "refused") and decision["reason"]
        champion_now = str(registry.get_model_version_by_alias(name, "champion").version)
        assert champion_now == (str(entry["version"]) if decision["promoted"] else champions[kind])
        tags = registry.get_model_version(name, str(entry["version"])).tags
        assert tags["promotion.decision"] == decision["decision"]

    from frontwire.train.retrain_report import render_summary

    screen = render_summary(summary)
    print(f"\n{screen}")
    assert len(screen.splitlines()) <= 40, screen
    assert re.search(r"since the last import: \+4 records", screen), screen
    assert screen.count("decision: ") == 2, screen
    assert list((home / "data" / "retrain").glob("*.json"))
