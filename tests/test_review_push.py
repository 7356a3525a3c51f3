"""`frontwire labeling review --push` against a real Label Studio server (the session fixture `label_studio`).

The repo's sample export goes into a fresh project with its annotations → `frontwire labeling import --url
--project` gives records carrying the project's real task ids → one topic label removed and one span dropped
in the records (the project's annotations stay as they were) → `frontwire labeling review --push` → the
predictions, the annotations and the saved tab are read back through the SDK; a second run adds nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from frontwire.labeling.importer import read_export_file
from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.review_push import push_review
from frontwire.labeling.review_suspects import SpanAnnotation, Suspect, read_suspects
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import sample_export
from frontwire.records import Record, read_records, write_records
from frontwire.schema import load_schema

pytestmark = pytest.mark.label_studio

SCHEMA = load_schema()
LABELING = load_labeling_config()
PREFIX = LABELING.review.model_version_prefix
TITLE = LABELING.review.view_title
# planted in the records only; both are near the top of the review's ranking on the sample (folds=2: ranks
# 16 and 7): a newsletter sign-up with its boilerplate label removed, and "Russia" left unmarked once
FLIPPED_RECORD, FLIPPED_TOPIC = "sample-a01-p007", "boilerplate"
DROPPED_RECORD, DROPPED_SURFACE = "sample-a01-p000", "Russia"
REVIEW_SET = ("--set", "review.folds=2")


def u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def frontwire_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("frontwire")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("frontwire")
    assert found, "the frontwire console script is not installed"
    return [found]


def cli(server: Any, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(LABEL_STUDIO_API_KEY=server.token, FRONTWIRE_LOG_LEVEL="WARNING")
    proc = subprocess.run([*frontwire_cmd(), "labeling", *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == expect, f"labeling {' '.join(args)}: rc {proc.returncode}\n{proc.stderr[-4000:]}"
    return proc


def annotated_tasks() -> list[dict[str, Any]]:
    """The sample's tasks as an import payload: their data and their annotations (results, flags)."""
    tasks = []
    for task in read_export_file(sample_export()):
        annotations = [
            {"result": a["result"], "was_cancelled": bool(a.get("was_cancelled")),
             "ground_truth": bool(a.get("ground_truth"))}
            for a in task.get("annotations") or []
            if isinstance(a, dict) and isinstance(a.get("result"), list)
        ]
        if isinstance(task.get("data"), dict) and annotations:
            tasks.append({"data": task["data"], "annotations": annotations})
    return tasks


def annotations_state(client: Any, project_id: int) -> dict[int, list[tuple[int, str, str]]]:
    """{task id: [(annotation id, result as JSON, updated_at)]} from the project's full export."""
    from frontwire.labeling.client import export_tasks

    return {
        task["id"]: sorted(
            (a["id"], json.dumps(a["result"], sort_keys=True), str(a.get("updated_at"))) for a in task["annotations"]
        )
        for task in export_tasks(client, project_id)
    }


def review_predictions(client: Any, project_id: int) -> list[Any]:
    return [p for p in client.predictions.list(task_project=project_id) if p.model_version.startswith(PREFIX)]


def review_views(client: Any, project_id: int) -> list[Any]:
    return [v for v in client.views.list(project=project_id) if (v.data or {}).get("title") == TITLE]


@dataclass(frozen=True)
class Pushed:
    client: Any
    project_id: int
    records: list[Record]  # as planted, i.e. as the review saw them
    clean: dict[str, Record]  # as the project has them
    data_dir: Path
    suspects: list[Suspect]
    stdout: str
    stderr: str
    annotations_before: dict[int, list[tuple[int, str, str]]]
    seconds: float


@pytest.fixture(scope="module")
def pushed(label_studio: Any, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    from label_studio_sdk import LabelStudio

    began = time.perf_counter()
    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token, timeout=120)
    project = client.projects.create(
        title=f"frontwire review push {uuid.uuid4().hex[:8]}", label_config=label_studio_config(SCHEMA, LABELING)
    )
    client.projects.import_tasks(id=project.id, request=annotated_tasks(), return_task_ids=True)
    data_dir = tmp_path_factory.mktemp("review-push")
    cli(label_studio, "import", "--url", label_studio.url, "--project", str(project.id), "--out", str(data_dir))
    clean = read_records(data_dir / "records.jsonl", SCHEMA)
    by_id = {r.id: r for r in clean}
    assert by_id[FLIPPED_RECORD].labels == [FLIPPED_TOPIC]
    assert DROPPED_SURFACE in [by_id[DROPPED_RECORD].surface(s) for s in by_id[DROPPED_RECORD].entities]
    planted = [r.model_copy(deep=True) for r in clean]
    for record in planted:
        if record.id == FLIPPED_RECORD:
            record.labels = []
        if record.id == DROPPED_RECORD:
            record.entities = [s for s in record.entities if record.surface(s) != DROPPED_SURFACE]
    write_records(data_dir / "records.jsonl", planted)
    before = annotations_state(client, project.id)
    assert not review_predictions(client, project.id) and not review_views(client, project.id)

    proc = cli(label_studio, "review", str(data_dir), *REVIEW_SET, "--push", "--url", label_studio.url,
               "--project", str(project.id))
    return Pushed(client, project.id, planted, {r.id: r for r in clean}, data_dir,
                  read_suspects(data_dir / "review.jsonl"), proc.stdout, proc.stderr, before,
                  time.perf_counter() - began)


def test_push_summary_names_what_it_pushed(pushed: Pushed) -> None:
    tasks = {s.task_id for s in pushed.suspects}
    match = re.search(
        rf"project {pushed.project_id}: (\d+) tasks with suspects, (\d+) predictions added \(({PREFIX}-[0-9-]+)\), "
        rf"0 already there; view (\d+) '{TITLE}' \(created\); 0 suspects of 0 records not pushed",
        pushed.stdout,
    )
    assert match, pushed.stdout
    assert int(match.group(1)) == int(match.group(2)) == len(tasks) > 0
    day = dt.date.fromisoformat(match.group(3).removeprefix(f"{PREFIX}-"))
    assert abs((dt.datetime.now(dt.UTC).date() - day).days) <= 1
    assert "error" not in pushed.stderr
    print(f"\nreview push: {len(pushed.suspects)} suspects on {len(tasks)} tasks, {pushed.seconds:.1f} s "
          "(project, import, review and push)")


def test_every_suspect_task_has_one_review_prediction(pushed: Pushed) -> None:
    predictions = review_predictions(pushed.client, pushed.project_id)
    counts = Counter(p.task for p in predictions)
    assert set(counts) == {s.task_id for s in pushed.suspects}
    assert set(counts.values()) == {1}
    [version] = {p.model_version for p in predictions}
    assert re.fullmatch(rf"{PREFIX}-\d{{4}}-\d{{2}}-\d{{2}}", version)
    strongest: dict[int, float] = {}
    for s in pushed.suspects:
        strongest[s.task_id] = max(strongest.get(s.task_id, 0.0), s.score)
    for p in predictions:
        assert p.score == pytest.approx(strongest[p.task], abs=1e-4)


def _spans(prediction: Any) -> dict[tuple[int, int], tuple[str, str]]:
    return {
        (r["value"]["start"], r["value"]["end"]): (r["value"]["labels"][0], r["value"]["text"])
        for r in prediction.result
        if r["type"] == "labels"
    }


def _choices(prediction: Any) -> list[str]:
    return [c for r in prediction.result if r["type"] == "choices" for c in r["value"]["choices"]]


def test_predictions_carry_the_suggested_change(pushed: Pushed) -> None:
    by_task = {p.task: p for p in review_predictions(pushed.client, pushed.project_id)}
    topic_suspects = Counter(s.record_id for s in pushed.suspects if s.kind == "topic")
    for s in pushed.suspects:
        prediction = by_task[s.task_id]
        if s.kind == "topic":
            if topic_suspects[s.record_id] == 1:  # alone, its suggestion is the prediction's topics
                assert _choices(prediction) == s.suggested
            continue
        start, end = s.span
        key = (u16(s.text[:start]), u16(s.text[:end]))
        if isinstance(s.suggested, SpanAnnotation):
            assert _spans(prediction)[key] == (s.suggested.label, s.text[start:end])
        else:
            assert key not in _spans(prediction)
    # the two planted errors: the suggestion is the annotation the project has
    records = {r.id: r for r in pushed.records}
    flipped = by_task[records[FLIPPED_RECORD].meta["ls_task_id"]]
    assert _choices(flipped) == [FLIPPED_TOPIC]
    dropped_record = pushed.clean[DROPPED_RECORD]
    [span] = [s for s in dropped_record.entities if dropped_record.surface(s) == DROPPED_SURFACE]
    key = (u16(dropped_record.text[: span.start]), u16(dropped_record.text[: span.end]))
    dropped = by_task[dropped_record.meta["ls_task_id"]]
    assert _spans(dropped)[key] == (span.label, DROPPED_SURFACE)
    # the whole paragraph's annotation, not the change alone: the spans nobody doubts are there too
    doubted = {s.span for s in pushed.suspects if s.record_id == DROPPED_RECORD and s.span}
    for other in dropped_record.entities:
        if (other.start, other.end) not in doubted:
            assert (u16(dropped_record.text[: other.start]), u16(dropped_record.text[: other.end])) in _spans(dropped)


def test_annotations_are_untouched(pushed: Pushed) -> None:
    assert annotations_state(pushed.client, pushed.project_id) == pushed.annotations_before


def test_the_saved_tab_lists_the_review_tasks(pushed: Pushed) -> None:
    [view] = review_views(pushed.client, pushed.project_id)
    listed = {t.id for t in pushed.client.tasks.list(project=pushed.project_id, view=view.id, fields="task_only")}
    assert listed == {s.task_id for s in pushed.suspects}
    assert f"view {view.id} '{TITLE}'" in pushed.stdout


def test_second_run_adds_nothing(pushed: Pushed, label_studio: Any) -> None:
    predictions = {p.id for p in review_predictions(pushed.client, pushed.project_id)}
    [view] = review_views(pushed.client, pushed.project_id)
    proc = cli(label_studio, "review", str(pushed.data_dir), *REVIEW_SET, "--push", "--url", label_studio.url,
               "--project", str(pushed.project_id))
    tasks = len({s.task_id for s in pushed.suspects})
    assert f"{tasks} tasks with suspects, 0 predictions added" in proc.stdout, proc.stdout
    assert f"{tasks} already there; view {view.id} '{TITLE}';" in proc.stdout, proc.stdout
    assert {p.id for p in review_predictions(pushed.client, pushed.project_id)} == predictions
    assert [v.id for v in review_views(pushed.client, pushed.project_id)] == [view.id]
    assert annotations_state(pushed.client, pushed.project_id) == pushed.annotations_before


def test_suspects_that_cannot_be_pushed_are_errors(pushed: Pushed) -> None:
    records = {r.id: r for r in pushed.records}
    real = records[FLIPPED_RECORD]
    template = next(s for s in pushed.suspects if s.record_id == FLIPPED_RECORD)
    no_task = real.model_copy(update={"id": "no-task", "meta": {"article_id": "x"}})
    elsewhere = real.model_copy(update={"id": "elsewhere", "meta": {"article_id": "x", "ls_task_id": 10**9}})
    changed = real.model_copy(update={"id": "changed", "text": real.text + " (edited)"})
    suspects = [
        template.model_copy(update={"record_id": r.id, "task_id": r.meta.get("ls_task_id"), "text": r.text})
        for r in (no_task, elsewhere, changed)
    ]
    before = {p.id for p in review_predictions(pushed.client, pushed.project_id)}
    outcome = push_review(pushed.client, pushed.project_id, [no_task, elsewhere, changed], suspects, SCHEMA,
                          LABELING)
    reasons = {e.record_id: str(e) for e in outcome.errors}
    assert "no Label Studio task id" in reasons["no-task"]
    assert f"task {10**9} is not in project {pushed.project_id}" in reasons["elsewhere"]
    assert "text is not the record's" in reasons["changed"]
    assert outcome.tasks == outcome.created == 0
    assert {p.id for p in review_predictions(pushed.client, pushed.project_id)} == before


def test_push_into_the_wrong_project_fails_loudly(pushed: Pushed, label_studio: Any) -> None:
    other = pushed.client.projects.create(title=f"frontwire empty {uuid.uuid4().hex[:8]}",
                                          label_config=label_studio_config(SCHEMA, LABELING))
    proc = cli(label_studio, "review", str(pushed.data_dir), *REVIEW_SET, "--push", "--url", label_studio.url,
               "--project", str(other.id), expect=1)
    assert f"is not in project {other.id}" in proc.stderr
    assert "is --project the export's?" in proc.stderr
    assert not review_predictions(pushed.client, other.id)


def test_a_later_review_moves_the_tabs_filter_and_keeps_the_tab(pushed: Pushed) -> None:
    from frontwire.labeling.review_push import ensure_review_view, review_model_version

    [view] = review_views(pushed.client, pushed.project_id)
    [current] = {p.model_version for p in review_predictions(pushed.client, pushed.project_id)}
    later = review_model_version(PREFIX, dt.date(2099, 1, 1))
    try:
        assert ensure_review_view(pushed.client, pushed.project_id, TITLE, later) == (view.id, False)
        [moved] = review_views(pushed.client, pushed.project_id)
        assert moved.id == view.id
        # no prediction has the later version yet: the tab is empty, not showing the old queue
        assert not list(pushed.client.tasks.list(project=pushed.project_id, view=view.id, fields="task_only"))
    finally:
        assert ensure_review_view(pushed.client, pushed.project_id, TITLE, current) == (view.id, False)
    listed = {t.id for t in pushed.client.tasks.list(project=pushed.project_id, view=view.id, fields="task_only")}
    assert listed == {s.task_id for s in pushed.suspects}
