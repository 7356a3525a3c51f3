"""The whole Label Studio round trip against a real server (the session fixture `label_studio`).

push articles (txt, jsonl, html) → project created from the generated config → push again adds nothing
→ push with predictions (stored with model_version and score) → annotations added through the API
(UTF-16 offsets, one cancelled, one task left alone) → `frontwire labeling import --url … --project …`
→ records and report compared with what was sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from frontwire.documents import read_documents
from frontwire.labeling.ls_results import to_label_studio_result
from frontwire.labeling.push import paragraph_tasks
from frontwire.labeling.settings import load_labeling_config
from frontwire.records import read_records
from frontwire.schema import load_schema

pytestmark = pytest.mark.label_studio

SCHEMA = load_schema()
LABELING = load_labeling_config()
TOPICS = [t for t in SCHEMA.topic_names if t not in SCHEMA.exclusive_topics]
EXCLUSIVE = SCHEMA.exclusive_topics[0]
ENT = SCHEMA.entity_names

NEWSLETTER = "Sign up for our daily war briefing newsletter."
EMOJI_PARAGRAPH = (
    "🇺🇦 Volunteers in Odesa 🙏 handed out water after the strike, and Zelensky thanked them on Telegram 💙💛."
)

ARTICLE_TXT = (
    "Kyiv, 12 March — Russian missiles struck an energy facility near Lviv overnight,\n"
    "governor Maksym Kozytskyi said.\n\n"
    f"{EMOJI_PARAGRAPH}\n\n{NEWSLETTER}\n"
)

ARTICLES_JSONL = [
    {
        "id": "wire-001",
        "source": "testwire",
        "published": "2024-03-12",
        "text": "EU foreign ministers agreed new sanctions against Russian banks on Monday.\n\n"
        "The package also bans exports of drone parts, officials in Brussels said.",
    },
    {
        "id": "wire-002",
        "source": "testwire",
        "published": "2024-03-13",
        "text": "Ukrainian troops pushed Russian forces back from villages near Bakhmut.\n\nAdvertisement",
    },
]

PAGE_HTML = f"""<!doctype html><html><head><title>t</title><script>var x = 1;</script></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>NATO leaders met in Vilnius to discuss air defence for Ukraine.</h1>
<p>Patriot systems were promised by Germany, Olaf Scholz said.</p></article>
<div class="promo">{NEWSLETTER}</div>
<footer><p>© 2024 Example Times</p></footer></body></html>"""

PREDICTED_JSONL = [
    {
        "id": "wire-003",
        "source": "testwire",
        "published": "2024-03-14",
        "text": "Air defence shot down 🚀 six Shahed drones over Kharkiv, Oleh Syniehubov said.\n\n"
        "Power was restored by the morning.",
    },
]

# What the annotators do, by paragraph id: (topics, [(surface, entity type)]), or a special action.
CANCEL, LEAVE = "cancel", "leave"
PLAN: dict[str, Any] = {
    "kyiv-live-p000": ([TOPICS[0]], [("Kyiv", ENT[-2]), ("Lviv", ENT[-2]), ("Maksym Kozytskyi", ENT[0])]),
    "kyiv-live-p001": (
        [TOPICS[0], TOPICS[1]],
        [("Odesa", ENT[-2]), ("Zelensky", ENT[0]), ("Telegram", ENT[1])],
    ),
    "kyiv-live-p002": ([EXCLUSIVE], []),
    "wire-001-p000": ([TOPICS[2]], [("EU", ENT[1]), ("Russian banks", ENT[1])]),
    "wire-001-p001": CANCEL,
    "wire-002-p000": ([TOPICS[3 % len(TOPICS)]], [("Bakhmut", ENT[-2])]),
    "wire-002-p001": LEAVE,
    "page-p000": ([EXCLUSIVE], []),
    "page-p001": ([TOPICS[1]], [("NATO", ENT[1]), ("Vilnius", ENT[-2]), ("Ukraine", ENT[-2])]),
    "page-p002": ([], [("Patriot", ENT[-1]), ("Germany", ENT[-2]), ("Olaf Scholz", ENT[0])]),
    "page-p004": ([EXCLUSIVE], []),
    # page-p003 is the newsletter again: the same content hash as kyiv-live-p002, never imported twice
}
EXPECTED_PARAGRAPHS = 3 + 2 + 2 + 5  # what the input files hold, counted by hand
EXPECTED_TASKS = EXPECTED_PARAGRAPHS - 1  # the newsletter repeated in the page


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities_for(text: str, spans: list[tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for surface, label in spans:
        start = text.index(surface)
        out.append({"start": start, "end": start + len(surface), "label": label})
    return out


def frontwire_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("frontwire")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("frontwire")
    assert found, "the frontwire console script is not installed"
    return [found]


def cli(server: Any, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(LABEL_STUDIO_URL=server.url, LABEL_STUDIO_API_KEY=server.token, FRONTWIRE_LOG_LEVEL="WARNING")
    proc = subprocess.run([*frontwire_cmd(), "labeling", *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"frontwire labeling {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    return proc.stdout


def all_tasks(client: Any, project_id: int) -> list[Any]:
    return list(client.tasks.list(project=project_id, fields="all"))


def test_label_studio_round_trip(label_studio: Any, tmp_path: Path) -> None:
    from label_studio_sdk import LabelStudio

    began = time.perf_counter()
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    title = f"frontwire round trip {uuid.uuid4().hex[:8]}"

    txt = tmp_path / "kyiv-live.txt"
    txt.write_text(ARTICLE_TXT, encoding="utf-8")
    jsonl = tmp_path / "wires.jsonl"
    jsonl.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in ARTICLES_JSONL), encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text(PAGE_HTML, encoding="utf-8")
    inputs = [str(txt), str(jsonl), str(page)]

    # --- push: the project is created from the generated config ---
    out = cli(label_studio, "push", *inputs, "--project-title", title)
    match = re.search(r"project (\d+) \(created\)", out)
    assert match, out
    project_id = int(match.group(1))
    assert f"{EXPECTED_PARAGRAPHS} paragraphs, {EXPECTED_TASKS} imported, 0 already there, 1 duplicates" in out, out
    project = client.projects.get(id=project_id)
    assert project.title == title
    assert "".join(project.label_config.split()) == "".join(
        cli(label_studio, "config").split()
    )  # the server kept the generated XML as sent
    tasks = all_tasks(client, project_id)
    assert len(tasks) == EXPECTED_TASKS
    by_pid = {t.data["paragraph_id"]: t for t in tasks}
    assert set(by_pid) == set(PLAN)  # page-p003 repeats kyiv-live-p002's text: imported once
    assert by_pid["kyiv-live-p001"].data["text"] == EMOJI_PARAGRAPH
    assert by_pid["wire-001-p000"].data["source"] == "testwire"
    assert by_pid["page-p000"].data["text"] == "Home World"  # chrome is a task, not dropped

    # --- push again: idempotent ---
    out = cli(label_studio, "push", *inputs, "--project-title", title)
    assert f"project {project_id}:" in out and "(created)" not in out, out
    assert f"{EXPECTED_PARAGRAPHS} paragraphs, 0 imported, {EXPECTED_PARAGRAPHS} already there" in out, out
    assert len(all_tasks(client, project_id)) == EXPECTED_TASKS

    # --- push with predictions ---
    predicted = tmp_path / "predicted.jsonl"
    predicted.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in PREDICTED_JSONL), encoding="utf-8")
    new_tasks = paragraph_tasks(read_documents(predicted), LABELING)
    first_text = new_tasks[0]["data"]["text"]
    prediction_entities = entities_for(
        first_text, [("Shahed drones", ENT[-1]), ("Kharkiv", ENT[-2]), ("Oleh Syniehubov", ENT[0])]
    )
    for entity, score in zip(prediction_entities, (0.91, 0.88, 0.67), strict=True):
        entity["score"] = score
    sent_prediction = {
        "paragraph_id": new_tasks[0]["data"]["paragraph_id"],
        "model_version": "frontwire-test-0.1",
        "score": 0.83,
        "result": to_label_studio_result(
            first_text,
            [TOPICS[0]],
            prediction_entities,
            topics_control=LABELING.topics_control,
            entities_control=LABELING.entities_control,
            to_name=LABELING.text_field,
            label_scores={TOPICS[0]: 0.83},
        ),
    }
    predictions_file = tmp_path / "predictions.jsonl"
    predictions_file.write_text(json.dumps(sent_prediction, ensure_ascii=False) + "\n", encoding="utf-8")
    out = cli(label_studio, "push", str(predicted), "--project-title", title, "--predictions", str(predictions_file))
    assert "2 imported" in out, out
    tasks = all_tasks(client, project_id)
    assert len(tasks) == EXPECTED_TASKS + 2
    by_pid = {t.data["paragraph_id"]: t for t in tasks}
    predicted_task = by_pid[sent_prediction["paragraph_id"]]
    [stored] = client.predictions.list(task=predicted_task.id)
    assert stored.model_version == "frontwire-test-0.1"
    assert stored.score == pytest.approx(0.83)
    stored_spans = sorted(
        (r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"][0])
        for r in stored.result
        if r["type"] == "labels"
    )
    # stored in the editor's UTF-16 units (the rocket emoji shifts everything after it by one)
    assert stored_spans == sorted(
        (
            u16(first_text[: e["start"]]),
            u16(first_text[: e["end"]]),
            first_text[e["start"] : e["end"]],
            e["label"],
        )
        for e in prediction_entities
    )
    assert [r["value"]["choices"] for r in stored.result if r["type"] == "choices"] == [[TOPICS[0]]]
    other = by_pid[new_tasks[1]["data"]["paragraph_id"]]
    assert client.predictions.list(task=other.id) == []

    # --- annotate through the API ---
    sent: dict[int, tuple[list[str], list[dict[str, Any]]]] = {}
    cancelled_id = left_id = None
    for pid, plan in PLAN.items():
        t = by_pid[pid]
        if plan == LEAVE:
            left_id = t.id
            continue
        if plan == CANCEL:
            client.annotations.create(id=t.id, result=[], was_cancelled=True)
            cancelled_id = t.id
            continue
        labels, spans = plan
        entities = entities_for(t.data["text"], spans)
        result = to_label_studio_result(
            t.data["text"],
            labels,
            entities,
            topics_control=LABELING.topics_control,
            entities_control=LABELING.entities_control,
            to_name=LABELING.text_field,
        )
        client.annotations.create(id=t.id, result=result, was_cancelled=False, ground_truth=True)
        sent[t.id] = (labels, entities)
    # the emoji paragraph went out in UTF-16 units, which differ from the Python offsets
    emoji_task = by_pid["kyiv-live-p001"]
    [emoji_annotation] = client.annotations.list(id=emoji_task.id)
    sent_values = sorted(r["value"]["start"] for r in emoji_annotation.result if r["type"] == "labels")
    assert sent_values == sorted(u16(EMOJI_PARAGRAPH[: e["start"]]) for e in sent[emoji_task.id][1])
    assert all(
        u != e["start"]
        for u, e in zip(sent_values, sorted(sent[emoji_task.id][1], key=lambda e: e["start"]), strict=True)
    )

    # --- import back from the live project ---
    data_dir = tmp_path / "data"
    out = cli(
        label_studio,
        "import",
        "--url",
        label_studio.url,
        "--project",
        str(project_id),
        "--out",
        str(data_dir),
    )
    records = read_records(data_dir / "records.jsonl", SCHEMA)
    total = EXPECTED_TASKS + 2
    assert f"{total} tasks -> {len(sent)} records, {total - len(sent)} errors" in out, out
    got = {r.meta["ls_task_id"]: r for r in records}
    assert set(got) == set(sent)
    for task_id, (labels, entities) in sent.items():
        record = got[task_id]
        task = next(t for t in tasks if t.id == task_id)
        assert record.id == task.data["paragraph_id"]
        assert record.text == task.data["text"]
        assert record.meta["article_id"] == task.data["article_id"]
        assert record.meta["content_hash"] == task.data["content_hash"]
        assert record.labels == [t for t in SCHEMA.topic_names if t in labels]
        assert [(s.start, s.end, s.label) for s in record.entities] == sorted(
            (e["start"], e["end"], e["label"]) for e in entities
        )
        for span in record.entities:
            assert record.surface(span) in {s for s, _ in PLAN[record.id][1]}
    emoji_record = got[emoji_task.id]
    assert [emoji_record.surface(s) for s in emoji_record.entities] == ["Odesa", "Zelensky", "Telegram"]
    assert got[by_pid["page-p002"].id].labels == []  # a real negative: annotated, no topic

    report = [json.loads(line) for line in (data_dir / "import_report.jsonl").read_text().splitlines()]
    errors = {row["task_id"]: row for row in report if row["severity"] == "error"}
    assert set(errors) == {cancelled_id, left_id, predicted_task.id, other.id}
    assert errors[cancelled_id]["reason"] == "cancelled"
    assert errors[left_id]["reason"] == "unlabeled"
    assert errors[predicted_task.id]["reason"] == "unlabeled"  # a prediction is not a label
    assert "prediction" in errors[predicted_task.id]["detail"]
    assert errors[left_id]["record_id"] == "wire-002-p001"
    assert not [row for row in report if row["severity"] != "error"], "a clean round trip needs no repairs"

    elapsed = time.perf_counter() - began
    startup = getattr(label_studio, "startup_seconds", None)
    print(
        f"\nLabel Studio round trip: {elapsed:.1f} s"
        + (f" (server start-up, once per session: {startup:.1f} s)" if startup else "")
    )
