"""Fast tests of what `frontwire labeling suggest` ranks by and what it drops: informativeness and near-duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from frontwire.documents import content_hash
from frontwire.labeling.dedup import MinHasher, jaccard, near_duplicate_clusters, normalise, shingles
from frontwire.labeling.informativeness import (
    MarginRecorder,
    informativeness,
    margin_uncertainty,
    topic_uncertainty,
)
from frontwire.labeling.suggest import rank_candidates

WIRE = ("Russian forces launched 40 drones and six missiles at Kyiv overnight, damaging power lines in three "
        "districts and injuring at least nine people, the city's military administration said on Sunday.")


# ------------------------------------------------------------------------------------------- informativeness
def test_topic_uncertainty_is_one_on_the_threshold_and_zero_when_sure() -> None:
    thresholds = [0.5, 0.2]
    scores = np.array([
        [0.5, 0.9],   # label 0 exactly on its threshold
        [1.0, 0.0],   # both as sure as a score can be
        [0.2, 1.0],   # label 1 sure; label 0 at 0.2 is 0.3/0.5 below its threshold
    ])
    value = topic_uncertainty(scores, thresholds)
    assert value[0] == pytest.approx(1.0)
    assert value[1] == pytest.approx(0.0)
    assert value[2] == pytest.approx(1 - 0.3 / 0.5)
    assert np.all((value >= 0) & (value <= 1))


def test_topic_uncertainty_respects_each_labels_threshold() -> None:
    # the same raw score 0.25 is near a tuned threshold of 0.2 but far below an untuned 0.5
    near_tuned = topic_uncertainty(np.array([[0.0, 0.25]]), [0.5, 0.2])[0]
    far_untuned = topic_uncertainty(np.array([[0.25, 0.0]]), [0.5, 0.2])[0]
    assert near_tuned > far_untuned
    # the nearest label decides, whatever the others say
    assert topic_uncertainty(np.array([[0.01, 0.21]]), [0.5, 0.2])[0] == pytest.approx(
        topic_uncertainty(np.array([[0.99, 0.21]]), [0.5, 0.2])[0])


def test_topic_uncertainty_orders_paragraphs_and_handles_edges() -> None:
    scores = np.array([[0.9, 0.1], [0.55, 0.1], [0.7, 0.1]])
    order = np.argsort(-topic_uncertainty(scores, [0.5, 0.5]))
    assert order.tolist() == [1, 2, 0]
    assert topic_uncertainty(np.zeros((0, 3)), [0.5] * 3).shape == (0,)
    # thresholds at the grid's ends do not divide by zero
    assert np.isfinite(topic_uncertainty(np.array([[0.0, 1.0]]), [0.0, 1.0])).all()
    with pytest.raises(ValueError):
        topic_uncertainty(np.array([0.1, 0.2]), [0.5, 0.5])


def test_margin_and_blend() -> None:
    assert margin_uncertainty([0.9, 0.2, 0.6]) == pytest.approx(0.8)
    assert margin_uncertainty([]) == 0.0
    topic, ner = np.array([0.2, 0.8]), np.array([1.0, 0.0])
    assert informativeness(topic, ner, 0.3) == pytest.approx([0.44, 0.56])
    assert informativeness(topic, None).tolist() == topic.tolist()
    assert informativeness(None, ner).tolist() == ner.tolist()
    with pytest.raises(ValueError):
        informativeness(None, None)


def test_margin_recorder_keeps_the_least_certain_word_and_passes_logits_through() -> None:
    # window of 4 tokens: [CLS] w1 w1' [SEP]; word-first token is position 1 only
    logits = np.zeros((1, 5, 3), dtype=np.float32)
    logits[0, 1] = [2.0, 1.9, -5.0]  # nearly tied: small margin
    logits[0, 2] = [9.0, -9.0, -9.0]  # a continuation sub-token: ignored
    ids = np.array([[101, 7, 8, 102, 0]])
    mask = np.array([[1, 1, 1, 1, 0]])
    recorder = MarginRecorder(lambda i, m: logits, {(101, 7, 8, 102): [1]})
    assert recorder(ids, mask) is logits
    probs = np.exp(logits[0, 1]) / np.exp(logits[0, 1]).sum()
    assert recorder.margins[(101, 7, 8, 102)] == pytest.approx(float(np.sort(probs)[-1] - np.sort(probs)[-2]))


# ------------------------------------------------------------------------------------------- near-duplicates
def test_normalise_and_shingles() -> None:
    assert normalise("  KYIV —  “Missiles”\nstruck!  ") == "kyiv missiles struck"
    assert shingles("a b c d") == {"a b c", "b c d"}
    assert shingles("Advertisement") == {"advertisement"}
    assert shingles("  ") == set()
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)


def test_minhash_estimates_jaccard() -> None:
    hasher = MinHasher(256, seed=3)
    a = shingles(WIRE)
    b = shingles(WIRE.replace("on Sunday", "on Sunday morning").replace("at least nine", "at least 11"))
    estimate = float(np.mean(hasher.signature(a) == hasher.signature(b)))
    assert estimate == pytest.approx(jaccard(a, b), abs=0.1)


def test_syndicated_copies_cluster_and_distinct_paragraphs_do_not() -> None:
    syndicated = [
        WIRE,
        "KYIV (Reuters) - " + WIRE,  # wire credit prepended
        WIRE.replace("on Sunday", "on Sunday morning"),  # one edit
        WIRE.upper(),  # same text after normalisation
    ]
    other = [
        "EU foreign ministers agreed a new package of sanctions against Russian banks and oil traders on Monday.",
        "Ukrainian troops pushed Russian forces back from two villages near Bakhmut, the general staff said.",
        "Russian forces launched 12 drones at Odesa overnight, damaging port facilities, the regional governor "
        "said on Monday.",  # same topic and phrasing, different facts: not a copy
    ]
    roots = near_duplicate_clusters([*syndicated, *other])
    assert roots[:4] == [0, 0, 0, 0]  # the earliest member represents the cluster
    assert roots[4:] == [4, 5, 6]


def test_short_texts_only_cluster_when_identical() -> None:
    roots = near_duplicate_clusters(["Advertisement", "advertisement ", "Advertisements", "Photo: AP"])
    assert roots == [0, 0, 2, 3]


def test_rank_candidates_skips_annotated_and_their_near_copies() -> None:
    def task(pid: str, text: str) -> dict:
        return {"data": {"text": text, "paragraph_id": pid, "article_id": pid.split("-")[0],
                         "content_hash": content_hash(text)}}

    annotated_text = "Talks between the foreign ministers in Ankara ended without agreement on a ceasefire, both said."
    queued_text = "NATO allies pledged more air defence systems for Ukraine at the summit in Vilnius on Tuesday."
    tasks = [
        task("a-p000", WIRE),
        task("b-p000", "KYIV (AP) - " + WIRE),  # near copy of a-p000
        task("c-p000", annotated_text),  # already annotated in the project
        task("d-p000", annotated_text.replace("both said", "both sides said")),  # near copy of an annotated task
        task("e-p000", WIRE),  # exact copy
        task("f-p000", queued_text.replace("on Tuesday", "on Tuesday evening")),  # near copy of a queued task...
        task("g-p000", queued_text),  # ...which is itself in the project, unannotated: it represents the cluster
    ]
    annotated = {content_hash(annotated_text): True, content_hash(queued_text): False}
    project_texts = {content_hash(annotated_text): annotated_text, content_hash(queued_text): queued_text}
    kept, counts = rank_candidates(tasks, annotated, project_texts)
    assert [t["data"]["paragraph_id"] for t in kept] == ["a-p000", "g-p000"]
    assert counts == {"unique": 6, "already_annotated": 1, "near_duplicates": 2, "near_annotated": 1}
