"""`frontwire labeling review` on the repo's sample export with errors planted (seeded): the CLI end to end,
the planted errors near the top of the ranking (far above what a random ranking would reach), the rows of
review.jsonl and the HTML page.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.labeling.importer import convert_export, read_export_file
from frontwire.labeling.review_plant import Planted, plant_errors, recovery
from frontwire.labeling.review_report import write_review_page
from frontwire.labeling.review_suspects import SpanAnnotation, Suspect, read_suspects
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import sample_export
from frontwire.records import Record, write_records
from frontwire.schema import load_schema

SCHEMA = load_schema()
RATE = 0.10  # of the sample's 291 records and ~850 spans: 29 topic and 85 entity errors planted
SEED = 0
# what the ranking must reach at k = number planted; measured 0.66 (topics) and 0.56 (entities) at seed 0
TOPIC_BAR, ENTITY_BAR = 0.45, 0.40
# and it must beat a random ranking at least this many times over
OVER_RANDOM = 4.0


@dataclass(frozen=True)
class PlantedRun:
    records: list[Record]  # as planted, i.e. as the review saw them
    planted: Planted
    out: Path
    stdout: str


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> PlantedRun:
    clean = convert_export(read_export_file(sample_export()), SCHEMA, load_labeling_config()).records
    records, planted = plant_errors(clean, SCHEMA, RATE, RATE, SEED)
    data = tmp_path_factory.mktemp("review-data")
    write_records(data / "records.jsonl", records)
    out = data / "out"
    result = CliRunner().invoke(app, ["labeling", "review", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return PlantedRun(records, planted, out, result.output)


def test_cli_writes_the_queue_and_the_page(planted_run: PlantedRun) -> None:
    assert (planted_run.out / "review.jsonl").is_file()
    assert (planted_run.out / "review.html").is_file()
    assert f"{len(planted_run.records)} records, 5 folds" in planted_run.stdout


def test_planted_topic_errors_rank_high(planted_run: PlantedRun) -> None:
    got = recovery(read_suspects(planted_run.out / "review.jsonl"), planted_run.planted)["topic"]
    # a random ranking of every (record, topic) decision finds k·k/decisions of the k planted in its top k
    decisions = len(planted_run.records) * len(SCHEMA.topic_names)
    random_recall = got["planted"] / decisions
    assert got["planted"] == round(RATE * len(planted_run.records))
    assert got["recall_at_k"] >= max(TOPIC_BAR, OVER_RANDOM * random_recall), got


def test_planted_entity_errors_rank_high(planted_run: PlantedRun) -> None:
    got = recovery(read_suspects(planted_run.out / "review.jsonl"), planted_run.planted)["entity"]
    # random over every span there is to doubt: the given ones plus (generously) exactly the dropped ones
    given = sum(len(r.entities) for r in planted_run.records)
    given_ranges = {(r.id, s.start, s.end) for r in planted_run.records for s in r.entities}
    dropped = len(planted_run.planted.spans - given_ranges)
    random_recall = got["planted"] / (given + dropped)
    assert 0 < dropped < got["planted"]  # both kinds of planted entity error are in play
    assert got["recall_at_k"] >= max(ENTITY_BAR, OVER_RANDOM * random_recall), got


def test_review_rows_say_what_is_doubted_and_why(planted_run: PlantedRun) -> None:
    rows = [json.loads(line) for line in (planted_run.out / "review.jsonl").read_text("utf-8").splitlines()]
    fields = {"kind", "error", "score", "rank", "record_id", "task_id", "article_id", "text", "topic", "span",
              "given", "suggested", "entities", "evidence"}
    assert rows and all(set(row) == fields for row in rows)
    by_id = {r.id: r for r in planted_run.records}
    for kind in ("topic", "entity"):
        group = [row for row in rows if row["kind"] == kind]
        assert [row["rank"] for row in group] == list(range(1, len(group) + 1))
        assert all(a["score"] >= b["score"] for a, b in pairwise(group))  # best first
    for row in rows:
        record = by_id[row["record_id"]]
        assert row["text"] == record.text
        assert row["task_id"] == record.meta["ls_task_id"]
        assert row["article_id"] == record.meta["article_id"]
        assert 0.0 <= row["score"] <= 1.0
        if row["kind"] == "topic":
            assert row["given"] == record.labels
            assert set(row["given"]) ^ set(row["suggested"]) >= {row["topic"]}  # the topic in doubt is toggled
            assert row["error"] == ("topic_extra" if row["topic"] in record.labels else "topic_missing")
            assert row["evidence"]["probability"] == row["evidence"]["probabilities"][row["topic"]]
            continue
        start, end = row["span"]
        annotated = {(s.start, s.end): s.label for s in record.entities}
        if row["error"] == "span_missing":
            assert row["given"] is None and (start, end) not in annotated
            assert row["suggested"]["text"] == record.text[start:end]
            assert row["suggested"]["label"] in SCHEMA.entity_names
        else:
            assert row["given"] == {"start": start, "end": end, "label": annotated[(start, end)],
                                    "text": record.text[start:end]}
            if row["error"] == "span_type":
                assert row["suggested"]["label"] not in (row["given"]["label"], None)
            else:
                assert row["suggested"] is None
        assert set(row["evidence"]["pooled"]) == {*SCHEMA.entity_names, "none"}


def test_page_lists_every_suspect(planted_run: PlantedRun) -> None:
    page = (planted_run.out / "review.html").read_text("utf-8")
    suspects = read_suspects(planted_run.out / "review.jsonl")
    for kind in ("topic", "entity"):
        count = sum(s.kind == kind for s in suspects)
        assert f"{kind.capitalize()} suspects ({count})" in page
        table = page.split(f"id='suspects-{kind}'>")[1].split("</table>")[0]
        assert table.count("<tr>") == count + 1  # the header row and one row per suspect
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched


def test_page_escapes_annotated_text(tmp_path: Path) -> None:
    text = "<script>alert(1)</script> hit Kyiv & Lviv"
    start = text.index("Kyiv")
    span = SpanAnnotation(start=start, end=start + 4, label="LOC", text="Kyiv")
    suspect = Suspect(kind="entity", error="span_rejected", score=0.9, rank=1, record_id="<b>r1</b>", task_id=7,
                      article_id="a1", text=text, topic=None, span=(start, start + 4), given=span, suggested=None,
                      entities=[span], evidence={"note": "<img src=x>"})
    write_review_page(tmp_path / "review.html", [suspect], {"records": 1})
    page = (tmp_path / "review.html").read_text("utf-8")
    assert "<script>alert" not in page and "<img" not in page and "<b>r1" not in page
    assert html.escape("<script>alert(1)</script>") in page


def test_damaged_review_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "review.jsonl"
    path.write_text('{"kind": "topic"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"review\.jsonl:1: not a review suspect"):
        read_suspects(path)


def test_cli_refuses_what_it_cannot_review(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["labeling", "review", str(tmp_path)])
    assert missing.exit_code == 2 and "records.jsonl" in missing.output
    clean = convert_export(read_export_file(sample_export()), SCHEMA, load_labeling_config()).records
    write_records(tmp_path / "records.jsonl", [r for r in clean if r.meta["article_id"] == clean[0].meta["article_id"]])
    few = runner.invoke(app, ["labeling", "review", str(tmp_path), "--set", "review.folds=3"])
    assert few.exit_code == 2 and "lower review.folds" in few.output
