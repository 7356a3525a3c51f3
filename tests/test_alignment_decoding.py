"""Alignment and decoding without training: character spans → BIO tags through the tokenizer's offsets and
back to exact spans on tricky text (a perfect forward stands in for the model), entities cut by window edges,
classifier windows, per-label threshold tuning, and topic exclusivity at decode time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import f1_score

from frontwire.metrics import multilabel_indicator, tune_thresholds
from frontwire.modeling import ModelMeta
from frontwire.predictor import EntityModel, decode_entities, decode_topics
from frontwire.records import EntitySpan, Record
from frontwire.schema import load_schema
from frontwire.train import classifier as classifier_module
from frontwire.train import ner as ner_module
from frontwire.windows import encode_windows

SCHEMA = load_schema()
TAGS = SCHEMA.bio_tags


# --- NER: character spans → BIO tags → (perfect logits) → decoded spans -----------------------------------------


def gold(text: str, items: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Spans of each (surface, label), found left to right."""
    spans, position = [], 0
    for surface, label in items:
        start = text.index(surface, position)
        spans.append((start, start + len(surface), label))
        position = start + len(surface)
    return spans


def record(text: str, spans: list[tuple[int, int, str]]) -> Record:
    return Record(id="r", text=text, entities=[EntitySpan(start=s, end=e, label=label) for s, e, label in spans])


def perfect_forward(features: list[dict]):
    """A model forward that returns, for each window, logits that pick exactly its training tags."""
    table = {}
    for feature in features:
        logits = np.zeros((len(feature["input_ids"]), len(TAGS)), dtype=np.float32)
        for token, tag in enumerate(feature["labels"]):
            logits[token, 0 if tag == ner_module.IGNORE else tag] = 10.0
        table[tuple(feature["input_ids"])] = logits

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros((*ids.shape, len(TAGS)), dtype=np.float32)
        for row in range(len(ids)):
            length = int(mask[row].sum())
            out[row, :length] = table[tuple(int(i) for i in ids[row, :length])]
        return out

    return forward


def round_trip(tokenizer, text: str, spans, max_length: int = 128, stride: int = 32):
    features, misaligned = ner_module.make_features(tokenizer, [record(text, spans)], TAGS, max_length, stride)
    meta = ModelMeta(
        kind="ner",
        name="perfect",
        schema=SCHEMA,
        labels=TAGS,
        max_length=max_length,
        stride=stride,
        base_model="default",
    )
    entities = EntityModel(meta, tokenizer, perfect_forward(features)).entities([text])[0]
    return features, misaligned, entities


TRICKY = {
    "curly-quotes-possessive": (
        "“Zelenskyy” told NATO’s summit in Vilnius that Kyiv’s air defences downed ‘Kinzhal’ missiles.",
        [("Zelenskyy", "PER"), ("NATO", "ORG"), ("Vilnius", "LOC"), ("Kyiv", "LOC"), ("Kinzhal", "WEAPON")],
    ),
    "hyphens": (
        "Kharkiv-based volunteers said F-16s and Storm Shadow missiles reached Russia-occupied Melitopol.",
        [
            ("Kharkiv", "LOC"),
            ("F-16s", "WEAPON"),
            ("Storm Shadow missiles", "WEAPON"),
            ("Russia", "LOC"),
            ("Melitopol", "LOC"),
        ],
    ),
    "emoji-astral-accents": (
        "🚀🇺🇦 𝐁𝐫𝐞𝐚𝐤𝐢𝐧𝐠 😢 Zelenskyy met Ursula von der Leyen and Thomas Müller in Kyiv 👍🏽.",
        [("Zelenskyy", "PER"), ("Ursula von der Leyen", "PER"), ("Thomas Müller", "PER"), ("Kyiv", "LOC")],
    ),
    "apostrophes": (
        "O'Brien visited Bakhmut’s outskirts with Wagner Group’s commanders.",
        [("O'Brien", "PER"), ("Bakhmut", "LOC"), ("Wagner Group", "ORG")],
    ),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_ner_spans_round_trip_exactly_on_tricky_text(tokenizer, name: str) -> None:
    text, items = TRICKY[name]
    spans = gold(text, items)
    _, misaligned, entities = round_trip(tokenizer, text, spans)
    assert misaligned == 0
    assert [(e["start"], e["end"], e["label"]) for e in entities] == spans
    assert [e["text"] for e in entities] == [surface for surface, _ in items]  # exact case, quotes, accents


def test_bio_tags_follow_words_not_word_pieces(tokenizer) -> None:
    text, items = TRICKY["hyphens"]
    features, _, _ = round_trip(tokenizer, text, gold(text, items))
    (feature,) = features
    windows = encode_windows(tokenizer, [text], 128, 32)
    tags_by_piece = [
        (text[a:b], None if t == ner_module.IGNORE else TAGS[t])
        for (a, b), t in zip(windows.offsets[0], feature["labels"], strict=True)
    ]
    # "Kharkiv" is four word pieces: the first carries B-LOC, the rest are ignored by the loss; "-based" is O
    assert tags_by_piece[1:7] == [("K", "B-LOC"), ("har", None), ("ki", None), ("v", None), ("-", "O"), ("based", "O")]
    # "F-16s" is three words (F, -, 16s): B, I, I; "Storm Shadow missiles": B, I, I
    weapon = [(piece, tag) for piece, tag in tags_by_piece if tag and tag.endswith("WEAPON")]
    assert weapon == [
        ("F", "B-WEAPON"),
        ("-", "I-WEAPON"),
        ("16", "I-WEAPON"),
        ("Storm", "B-WEAPON"),
        ("Shadow", "I-WEAPON"),
        ("missiles", "I-WEAPON"),
    ]


LONG = (
    "Ukrainian forces said Volodymyr Zelenskyy met Oleksandr Syrskyi near Zaporizhzhia after Shahed drones and "
    "Iskander missiles hit Dnipropetrovsk, while Kharkiv-based units used F-16s; NATO’s Jens Stoltenberg and "
    "the “Kremlin” responded 🚀🇺🇦 as Kyiv’s mayor Vitali Klitschko spoke."
)
LONG_ITEMS = [
    ("Volodymyr Zelenskyy", "PER"),
    ("Oleksandr Syrskyi", "PER"),
    ("Zaporizhzhia", "LOC"),
    ("Shahed drones", "WEAPON"),
    ("Iskander missiles", "WEAPON"),
    ("Dnipropetrovsk", "LOC"),
    ("Kharkiv", "LOC"),
    ("F-16s", "WEAPON"),
    ("NATO", "ORG"),
    ("Jens Stoltenberg", "PER"),
    ("Kremlin", "ORG"),
    ("Kyiv", "LOC"),
    ("Vitali Klitschko", "PER"),
]


def test_entities_cut_by_window_edges_decode_to_whole_spans(tokenizer) -> None:
    """Small windows put entity words (and multi-word entities) across window edges at many offsets: the decoded
    spans must still be the exact gold ones (regression: the most central copy of a word cut by an edge used to
    set its end, giving "Zaporizh" for "Zaporizhzhia")."""
    spans = gold(LONG, LONG_ITEMS)
    checked = 0
    for max_length, stride in itertools.product(range(16, 29), (0, 1, 2, 3, 4, 6)):
        features, misaligned, entities = round_trip(tokenizer, LONG, spans, max_length, stride)
        assert len(features) >= 4, "the paragraph should span several windows"
        assert misaligned == 0
        assert [(e["start"], e["end"], e["label"]) for e in entities] == spans, (max_length, stride)
        checked += 1
    assert checked == 13 * 6


def test_entity_starting_inside_a_tokenizer_word_is_counted_as_misaligned(tokenizer) -> None:
    """An emoji glued to a name makes one [UNK] word: the span cannot be represented; training counts it and
    decoding covers the whole word, never a piece of it."""
    text = "Sirens 🚨Kyiv tonight"
    _, misaligned, entities = round_trip(tokenizer, text, [(8, 12, "LOC")])
    assert misaligned == 1
    assert [(e["start"], e["end"], e["text"]) for e in entities] == [(7, 12, "🚨Kyiv")]


def test_decode_entities_bio_rules() -> None:
    def probs(tag: str) -> np.ndarray:
        row = np.full(len(TAGS), 0.01)
        row[TAGS.index(tag)] = 0.9
        return row

    text = "Putin met Xi Jinping in Moscow"
    words = [(0, 5, "B-PER"), (6, 9, "O"), (10, 12, "B-PER"), (13, 20, "I-PER"), (21, 23, "O"), (24, 30, "I-LOC")]
    entities = decode_entities(text, [(s, e, probs(t)) for s, e, t in words], TAGS)
    # I- after O opens an entity (lenient, as seqeval counts it); a B- after an entity closes it
    assert [(e["text"], e["label"]) for e in entities] == [("Putin", "PER"), ("Xi Jinping", "PER"), ("Moscow", "LOC")]
    assert [e["score"] for e in entities] == [0.9, 0.9, 0.9]


# --- classifier windows, thresholds, exclusivity ------------------------------------------------------------------


def test_classifier_windows_carry_the_paragraph_labels(tokenizer) -> None:
    labels = SCHEMA.topic_names
    records = [
        Record(id="long", text=LONG, labels=["strike", "advance"]),
        Record(id="short", text="Subscribe to our newsletter.", labels=["boilerplate"]),
        Record(id="none", text="The weather was mild.", labels=[]),
    ]
    features = classifier_module.make_features(tokenizer, records, labels, max_length=24, stride=6)
    windows = encode_windows(tokenizer, [r.text for r in records], 24, 6)
    assert windows.text_index.count(0) >= 3  # the long paragraph is several windows
    assert len(features) == len(windows.input_ids)
    expected = multilabel_indicator([r.labels for r in records], labels)
    for feature, ids, text_index in zip(features, windows.input_ids, windows.text_index, strict=True):
        assert feature["input_ids"] == ids
        assert feature["labels"].tolist() == expected[text_index].tolist()
        assert len(ids) <= 24


def test_tune_thresholds_picks_the_f1_optimal_threshold() -> None:
    labels = ["a", "b", "c"]
    #            a: positives at .30 .35 .80, negatives at .10 .20 .32
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0]])
    scores = np.array(
        [[0.30, 0.9, 0.7], [0.35, 0.1, 0.1], [0.80, 0.2, 0.2], [0.10, 0.3, 0.3], [0.20, 0.1, 0.4], [0.32, 0.8, 0.6]]
    )
    thresholds = tune_thresholds(y, scores, labels)
    # a: F1 is 6/7 for t in (0.20, 0.30] (all three positives, one false positive at .32), lower elsewhere;
    # ties go to the threshold nearest the default 0.5 → 0.30. b: perfectly separable on (0.3, 0.8] → 0.5.
    # c: no positives → the default.
    assert thresholds == {"a": 0.30, "b": 0.5, "c": 0.5}
    column = scores[:, 0]
    f1 = {t: f1_score(y[:, 0], column >= t) for t in (0.15, 0.21, 0.25, 0.30, 0.31, 0.33, 0.5, 0.81)}
    assert f1[0.30] == max(f1.values()) == pytest.approx(6 / 7) == f1[0.21]
    # nearest the default inside the optimum
    assert tune_thresholds(y[:, :1], scores[:, :1], ["a"], default=0.25) == {"a": 0.25}


@pytest.mark.parametrize(
    ("scores", "thresholds", "expected"),
    [
        ({"boilerplate": 0.9, "strike": 0.6}, {}, ["boilerplate"]),  # margin .4 vs .1
        ({"boilerplate": 0.55, "strike": 0.9, "diplomacy": 0.7}, {}, ["strike", "diplomacy"]),  # .05 vs .4
        ({"boilerplate": 0.7, "strike": 0.7}, {}, ["boilerplate"]),  # equal margins: the exclusive label
        ({"boilerplate": 0.85, "strike": 0.4}, {"boilerplate": 0.8, "strike": 0.3}, ["strike"]),  # per-label margins
        ({"boilerplate": 0.6}, {}, ["boilerplate"]),
        ({"strike": 0.49, "boilerplate": 0.1}, {}, []),
    ],
)
def test_decode_topics_keeps_boilerplate_exclusive(scores, thresholds, expected) -> None:
    labels = SCHEMA.topic_names
    assert SCHEMA.exclusive_topics == ["boilerplate"]
    row = [scores.get(label, 0.0) for label in labels]
    full = {label: thresholds.get(label, 0.5) for label in labels}
    assert decode_topics(row, labels, full, SCHEMA.exclusive_topics) == [label for label in labels if label in expected]
