"""Fast tests of `frontwire retrain`'s bookkeeping: what changed since the last import, and the one-screen summary."""

from __future__ import annotations

from frontwire.records import EntitySpan, Record
from frontwire.train.retrain_report import data_delta, disagreement, render_summary


def record(rid: str, article: str, labels: list[str], entities: list[tuple[int, int, str]] = ()) -> Record:
    return Record(id=rid, text="Kyiv was hit overnight.", labels=labels,
                  entities=[EntitySpan(start=s, end=e, label=t) for s, e, t in entities], meta={"article_id": article})


def test_data_delta_counts_added_removed_relabelled_and_new_articles() -> None:
    previous = [record("a-p0", "a", ["strike"]), record("a-p1", "a", []), record("b-p0", "b", ["diplomacy"])]
    current = [
        record("a-p0", "a", ["strike"], [(0, 4, "LOC")]),  # entity added: relabelled
        record("b-p0", "b", ["diplomacy"]),  # unchanged
        record("c-p0", "c", ["advance"]),  # new article, new record
        record("b-p1", "b", []),  # new record of an old article
    ]  # a-p1 is gone
    previous_groups = {"a": "train", "b": "test"}
    assignment = {"a": "train", "b": "test", "c": "dev"}
    delta = data_delta(previous, current, previous_groups, assignment, "article_id")
    assert (delta["added"], delta["removed"], delta["relabelled"]) == (2, 1, 1)
    assert delta["added_by_split"] == {"train": 0, "dev": 1, "test": 1}
    assert delta["new_groups"] == 1 and delta["new_groups_by_split"] == {"train": 0, "dev": 1, "test": 0}
    assert (delta["kept_groups"], delta["moved_groups"]) == (2, 0)
    assert data_delta(previous, current, previous_groups, {**assignment, "b": "train"}, "article_id")[
        "moved_groups"] == 1


def interval(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": value, "low": low, "high": high, "std": 0.01}


def test_summary_fits_one_screen_and_flags_a_dev_testdisagreement() -> None:
    data = {"source": "label-studio project 3", "records_dir": "runs/data", "tasks": 2174, "records": 1954,
            "errors": 220, "errors_by_reason": {"unlabeled": 195, "cancelled": 25}, "fingerprint": "abc",
            "added": 4, "removed": 0, "relabelled": 1, "added_by_split": {"train": 3, "dev": 1, "test": 0},
            "new_groups": 2, "new_groups_by_split": {"train": 1, "dev": 1, "test": 0}, "kept_groups": 800,
            "moved_groups": 0, "splits": {"train": 1370, "dev": 292, "test": 292}}
    headline = {"macro_f1": interval(0.70, 0.65, 0.75), "micro_f1": interval(0.80, 0.77, 0.83),
                "micro_precision": interval(0.8, 0.7, 0.9), "micro_recall": interval(0.8, 0.7, 0.9)}
    worse = {"macro_f1": {**interval(-0.05, -0.08, -0.02), "prob_b_better": 0.0}}
    entry = {"registered_model": "frontwire-classifier", "version": "5", "run_id": "0123456789abcdef",
             "test_comparison": {"paragraphs": 292, "n_resamples": 1000,
                                 "candidate": {"model": "frontwire-classifier v5", "intervals": headline},
                                 "champion": {"model": "frontwire-classifier v4 (champion)", "intervals": headline},
                                 "difference": worse},
             "decision": {"decision": "promoted", "promoted": True, "reason": "version 5 beats champion version 4"}}
    entry["warning"] = disagreement("classifier", entry)
    assert "lower with 95 % confidence" in entry["warning"]
    summary = {"started_at": "2026-11-27T00:00:00+00:00", "data": data, "test": {"paragraphs": 292},
               "classifier": entry}
    screen = render_summary(summary)
    lines = screen.splitlines()
    assert len(lines) <= 24
    assert all(len(line) <= 140 for line in lines), screen
    assert "+4 records, -0, 1 relabelled" in screen
    assert "2 new (train 1, dev 1, test 0), 800 kept their split, 0 moved" in screen
    assert "-0.050 [-0.080, -0.020]" in screen
    assert "decision: PROMOTED — version 5 beats champion version 4" in screen
    assert "warning: promoted on dev, but test macro_f1 is lower" in screen
    skipped = render_summary({"started_at": "t", "data": data, "skipped": "no annotation added"})
    assert skipped.splitlines()[-1] == "skipped: no annotation added"
