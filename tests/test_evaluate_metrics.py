"""`frontwire evaluate` building blocks on hand-computable cases: topic and entity metrics, the error
breakdown, calibration, the bootstrap, CoNLL reading with per-record input errors, HTML escaping.

Expected values are worked out by hand in the comments, not by calling the code under test.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from frontwire.evaluate.bootstrap import Counts, headline, intervals, paired_difference, resample_weights
from frontwire.evaluate.data import load_eval_data
from frontwire.evaluate.entities import EntityRun, evaluate_entities, project, word_offsets
from frontwire.evaluate.report import highlight
from frontwire.evaluate.topics import TopicRun, evaluate_topics
from frontwire.metrics import entity_metrics
from frontwire.records import EntitySpan, Record
from frontwire.schema import load_schema

SCHEMA = load_schema()
LABELS = SCHEMA.topic_names
A, B, C = [t for t in LABELS if t not in SCHEMA.exclusive_topics][:3]
ENT = SCHEMA.entity_names
UNKNOWN_ENTITY = "NOT_AN_ENTITY_TYPE"


def topic_case() -> tuple[list[Record], TopicRun]:
    """r0 right; r1 misses B (score .3); r2 predicts C on a no-label paragraph (score .8); r3 right."""
    gold = [[A], [A, B], [], [B]]
    predicted = [[A], [A], [C], [B]]
    scores = np.full((4, len(LABELS)), 0.1)
    for row, chosen in enumerate(predicted):
        for label in chosen:
            scores[row, LABELS.index(label)] = 0.9
    scores[1, LABELS.index(B)] = 0.3
    scores[2, LABELS.index(C)] = 0.8
    records = [Record(id=f"r{i}", text=f"paragraph {i}", labels=g) for i, g in enumerate(gold)]
    return records, TopicRun(list(LABELS), scores, predicted, dict.fromkeys(LABELS, 0.5), 0.0)


def test_topic_metrics_calibration_co_occurrence_and_misses_by_hand() -> None:
    records, run = topic_case()
    evaluation = evaluate_topics(records, run, top=10)
    metrics = evaluation.summary["metrics"]
    # TP: A 2, B 1 → 3; FP: C 1; FN: B 1 → micro P = R = F1 = 3/4
    assert metrics["micro"] == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})
    # per-label F1: A 1, B 2/3, C 0, the two labels never seen or predicted 0 → macro 1/3
    assert metrics["macro"]["f1"] == pytest.approx(1 / 3)
    assert metrics["exact_match"] == 0.5
    assert metrics["per_label"][B] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    # label A: bin 9 holds two positives scored .9 (|2 - 1.8|), bin 1 two negatives scored .1 (|0 - .2|) → .4 / 4
    calibration = evaluation.summary["calibration"]["per_label"][A]
    assert calibration["ece"] == pytest.approx(0.1)
    assert calibration["bins"][9] == pytest.approx(
        {"low": 0.9, "high": 1.0, "count": 2, "mean_score": 0.9, "fraction_positive": 1.0}
    )
    co = evaluation.summary["co_occurrence"]
    cell = {
        (g, p): co["matrix"][co["labels"].index(g)][co["labels"].index(p)] for g in co["labels"] for p in co["labels"]
    }
    assert (cell[A, A], cell[B, A], cell[B, B], cell["none", C]) == (2, 1, 1, 1)
    assert sum(map(sum, co["matrix"])) == 5
    # worst misses: r2 (wrong C at .8) before r1 (missed B at .3 → confidence .7)
    assert [(r["id"], r["confidence"], r["missed"], r["spurious"]) for r in evaluation.rows] == [
        ("r2", 0.8, [], [C]),
        ("r1", 0.7, [B], []),
    ]
    # the bootstrap's point estimates are the metrics themselves
    counts = Counts(evaluation.tp, evaluation.fp, evaluation.fn, np.ones(len(LABELS), dtype=bool), exact_match=True)
    point = {k: float(v[0]) for k, v in headline(counts, np.ones((1, 4))).items()}
    assert point == pytest.approx(
        {"micro_precision": 0.75, "micro_recall": 0.75, "micro_f1": 0.75, "macro_f1": 1 / 3, "exact_match": 0.5}
    )
    # threshold curves: at 0.85 label C's single prediction (.8) is gone, label A stays perfect
    curves = evaluation.curves
    at = int(np.argmin(np.abs(curves[A]["threshold"] - 0.85)))
    assert curves[A]["f1"][at] == 1.0 and curves[C]["precision"][at] == 0.0


TEXT = "Vladimir Putin met Emmanuel Macron in Paris near the Eiffel Tower with Shahed drones on Monday ."


def span(surface: str, label: str, text: str = TEXT) -> tuple[int, int, str]:
    start = text.index(surface)
    return start, start + len(surface), label


def test_entity_breakdown_metrics_and_bootstrap_agree_by_hand() -> None:
    gold = [
        span("Vladimir Putin", ENT[0]),
        span("Emmanuel Macron", ENT[0]),
        span("Paris", ENT[2]),
        span("Eiffel Tower", ENT[2]),
        span("Shahed drones", ENT[3]),
    ]
    predicted = [
        span("Vladimir Putin", ENT[0]),  # correct
        span("Emmanuel Macron", ENT[1]),  # wrong type
        span("Tower", ENT[2]),  # wrong boundary
        span("Shahed", ENT[1]),  # wrong type and boundary
        span("Monday", ENT[2]),
    ]  # spurious; Paris is missed
    record = Record(id="p1", text=TEXT, entities=[EntitySpan(start=s, end=e, label=t) for s, e, t in gold])
    run = EntityRun(
        [[{"start": s, "end": e, "label": t, "score": 0.5 + i / 10} for i, (s, e, t) in enumerate(predicted)]], 0.0
    )
    evaluation = evaluate_entities([record], run, ENT, top=5)
    breakdown = evaluation.summary["error_breakdown"]
    assert breakdown["counts"] == {
        "correct": 1,
        "wrong_type": 1,
        "wrong_boundary": 1,
        "wrong_both": 1,
        "missed": 1,
        "spurious": 1,
    }
    assert (breakdown["gold_entities"], breakdown["predicted_entities"]) == (5, 5)
    assert breakdown["examples"]["wrong_boundary"][0]["predicted"]["text"] == "Tower"
    # strict: 1 of 5 predicted right, 1 of 5 gold found → P = R = F1 = 0.2
    metrics = evaluation.summary["metrics"]
    assert metrics["micro"] == pytest.approx({"precision": 0.2, "recall": 0.2, "f1": 0.2})
    assert metrics == entity_metrics([TEXT], [gold], [predicted])
    point = headline(Counts(evaluation.tp, evaluation.fp, evaluation.fn, evaluation.macro_columns), np.ones((1, 1)))
    assert float(point["micro_f1"][0]) == pytest.approx(0.2)
    assert float(point["macro_f1"][0]) == pytest.approx(metrics["macro"]["f1"])
    row = evaluation.rows[0]
    assert row["errors"] == 5 and row["confidence"] == 0.9  # the most confident wrong span: Monday (0.5 + 4/10)
    matrix, names = evaluation.confusion
    assert matrix[names.index(ENT[0]), names.index(ENT[1])] == 1  # Macron: same boundaries, other type


def test_a_span_cutting_a_word_is_scored_as_the_whole_word() -> None:
    text = "Zelenskyy spoke."
    words = word_offsets(text)
    assert project(words, [(0, 8, ENT[0])]) == project(words, [(0, 9, ENT[0])]) == [(0, 1, ENT[0])]
    assert project(words, [(9, 10, ENT[0])]) == []  # whitespace only: touches no word


def test_bootstrap_is_deterministic_contains_the_estimate_and_is_fast() -> None:
    rng = np.random.default_rng(0)
    n, classes = 2000, 5
    tp = rng.integers(0, 2, (n, classes))
    fp = rng.integers(0, 2, (n, classes)) * (1 - tp)
    fn = rng.integers(0, 2, (n, classes)) * (1 - tp)
    counts = Counts(tp, fp, fn, np.ones(classes, dtype=bool), exact_match=True)
    started = time.perf_counter()
    weights = resample_weights(n, 1000, seed=7)
    first = intervals(counts, weights)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"1000 resamples of 2000 paragraphs took {elapsed:.1f} s"
    assert (weights.sum(1) == n).all()
    assert intervals(counts, resample_weights(n, 1000, seed=7)) == first
    assert intervals(counts, resample_weights(n, 1000, seed=8)) != first
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
    assert first["micro_f1"]["value"] == pytest.approx(micro)
    for name, ci in first.items():
        assert ci["low"] <= ci["value"] <= ci["high"], name
        assert ci["high"] - ci["low"] < 0.1, name  # 2,000 paragraphs pin these metrics down to a few points
    # paired: a model compared with itself differs by exactly 0 in every resample
    same = paired_difference(counts, counts, weights)["micro_f1"]
    assert (same["value"], same["low"], same["high"], same["prob_b_better"]) == (0.0, 0.0, 0.0, 0.0)


def test_conll_file_becomes_records_and_bad_sentences_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "sample.conll"
    path.write_text(
        "\ufeff-DOCSTART- -X- -X- O\n\n"
        f"EU NNP B-NP B-{ENT[1]}\nrejects VBZ B-VP O\nGerman JJ B-NP B-{UNKNOWN_ENTITY}\n\n"  # line 3: unknown type
        f"Peter\tB-{ENT[0]}\nBlackburn\tI-{ENT[0]}\n\n"  # line 7: tab separated
        f"BRUSSELS NNP B-NP B-{ENT[2]}\nno-tag-here\n\n"  # line 10: a bad line
        f"Kyiv I-{ENT[2]}\nwas O\nshelled O\n",  # line 13: IOB1-style I- opening an entity
        encoding="utf-8",
    )
    data = load_eval_data(path, SCHEMA, "ner", "test")
    assert data.format == "conll" and data.split == "all"
    assert [(r.id, r.text, [(s.start, s.end, s.label) for s in r.entities]) for r in data.records] == [
        ("sample:7", "Peter Blackburn", [(0, 15, ENT[0])]),
        ("sample:13", "Kyiv was shelled", [(0, 4, ENT[2])]),
    ]
    assert [(i.record_id, i.location.rsplit("/", 1)[-1], i.severity, i.reason) for i in data.issues] == [
        (None, "sample.conll:11", "error", "bad_line"),  # the bad line itself; its sentence (line 10) is left out
        ("sample:13", "sample.conll:13", "warning", "i_without_b"),
        ("sample:3", "sample:3", "error", "unknown_entity_type"),
    ]
    assert "column" in data.issues[0].detail and f"I-{ENT[2]} at token 'Kyiv'" in data.issues[1].detail
    assert data.describe()["input_errors"] == 2 and data.describe()["input_warnings"] == 1
    with pytest.raises(ValueError, match="no topic labels"):
        load_eval_data(path, SCHEMA, "classifier", "test")


def test_highlight_escapes_text_and_marks_gold_and_predicted_spans() -> None:
    text = '<b>Kyiv</b> & "Odesa"'
    gold = [{"start": 3, "end": 7, "label": ENT[2]}]
    predicted = [
        {"start": 3, "end": 7, "label": ENT[2], "score": 0.9},
        {"start": 15, "end": 20, "label": ENT[1], "score": 0.4},
    ]
    rendered = highlight(text, gold, predicted)
    assert "<b>" not in rendered and "&lt;b&gt;" in rendered and "&amp;" in rendered and "&quot;" in rendered
    assert "<span class='g p'" in rendered and "<span class='p'" in rendered
    assert rendered.count("<sub class='tag g'>") == 1 and rendered.count("<sub class='tag p'>") == 2
