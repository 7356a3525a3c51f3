"""Dataset splits, paragraph splitting (text and HTML) and the UTF-16 offset helpers."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from frontwire.config import ConfigError, validate_config
from frontwire.documents import content_hash, read_documents
from frontwire.offsets import (
    has_astral,
    py_span_to_utf16,
    py_to_utf16_map,
    utf16_span_to_py,
    utf16_to_py_map,
)
from frontwire.paragraphs import html_to_text, looks_like_html, split_text
from frontwire.paths import shared_dir
from frontwire.records import Record, fingerprint
from frontwire.schema import load_schema
from frontwire.splits import (
    SPLITS,
    SplitConfig,
    assign_splits,
    group_key,
    load_assignment,
    save_assignment,
    split_records,
)

SCHEMA = load_schema()


# --- splits ---


def synthetic(n_groups: int, *, seed: int = 0, prefix: str = "art") -> list[Record]:
    """Articles of 1-6 paragraphs; one topic is rare (1 group in 12), one paragraph in three has none."""
    rng = random.Random(seed)
    topics = SCHEMA.topic_names
    common, rare = topics[:-1], topics[-1]
    records = []
    for g in range(n_groups):
        article = f"{prefix}-{g:04d}"
        has_rare = g % 12 == 0
        for p in range(rng.randint(1, 6)):
            if has_rare and p == 0:
                labels = [rare]
            elif rng.random() < 0.33:
                labels = []
            else:
                labels = [rng.choice(common)]
            records.append(
                Record(
                    id=f"{article}-p{p:03d}",
                    text=f"Paragraph {p} of {article}.",
                    labels=labels,
                    meta={"article_id": article},
                )
            )
    return records


CONFIG = SplitConfig()


def test_same_seed_same_assignment_other_seed_other_assignment() -> None:
    records = synthetic(150)
    first = assign_splits(records, CONFIG)
    assert first == assign_splits(records, CONFIG)
    assert first == assign_splits(list(reversed(records)), CONFIG)  # input order does not matter
    other = assign_splits(records, CONFIG.model_copy(update={"seed": CONFIG.seed + 1}))
    assert other != first
    assert set(other) == set(first)


def test_no_group_on_two_sides() -> None:
    records = synthetic(150)
    assignment = assign_splits(records, CONFIG)
    parts = split_records(records, assignment, CONFIG.group_by)
    assert sorted(r.id for part in parts.values() for r in part) == sorted(r.id for r in records)
    sides = {name: {r.meta["article_id"] for r in part} for name, part in parts.items()}
    assert not sides["train"] & sides["dev"]
    assert not sides["train"] & sides["test"]
    assert not sides["dev"] & sides["test"]
    assert all(sides[name] for name in SPLITS)
    assert max(Counter(r.meta["article_id"] for r in records).values()) > 1  # grouping was exercised


def test_rough_label_balance() -> None:
    records = synthetic(240)
    assignment = assign_splits(records, CONFIG)
    parts = split_records(records, assignment, CONFIG.group_by)
    ratios = CONFIG.ratios
    for name in SPLITS:
        share = len(parts[name]) / len(records)
        assert abs(share - ratios[name]) < 0.05, (name, share)
    for label in [*SCHEMA.topic_names, None]:

        def has(record: Record, label: str | None = label) -> bool:
            return (label in record.labels) if label else not record.labels

        total = sum(1 for r in records if has(r))
        for name in SPLITS:
            share = sum(1 for r in parts[name] if has(r)) / total
            assert abs(share - ratios[name]) < 0.08, (label, name, share)
    rare = SCHEMA.topic_names[-1]
    assert all(any(rare in r.labels for r in parts[name]) for name in SPLITS)


def test_stable_when_groups_are_added() -> None:
    old = synthetic(120, seed=1)
    before = assign_splits(old, CONFIG)
    new = old + synthetic(60, seed=2, prefix="new")
    for seed in (CONFIG.seed, 999):
        after = assign_splits(new, CONFIG.model_copy(update={"seed": seed}), previous=before)
        assert {g: after[g] for g in before} == before
        assert set(after) == {r.meta["article_id"] for r in new}
        new_sides = Counter(after[g] for g in after if g.startswith("new-"))
        assert set(new_sides) == set(SPLITS), new_sides  # new groups are spread, not dumped in one split


def test_previous_assignment_wins_even_against_the_algorithm() -> None:
    records = synthetic(60)
    forced = dict.fromkeys(assign_splits(records, CONFIG), "test")
    forced_some = dict(list(forced.items())[:10])
    after = assign_splits(records, CONFIG, previous={**forced_some, "gone-article": "dev", "x": "bogus"})
    assert {g: after[g] for g in forced_some} == forced_some
    assert "gone-article" not in after and "x" not in after


def test_group_key_falls_back_to_the_record() -> None:
    with_article = Record(id="a-p1", text="t", meta={"article_id": "a"})
    without = Record(id="lonely", text="t", meta={"article_id": ""})
    assert group_key(with_article, "article_id") == "a"
    assert group_key(without, "article_id") == "record:lonely"
    assignment = assign_splits([with_article, without], CONFIG)
    assert set(assignment) == {"a", "record:lonely"}
    with pytest.raises(KeyError, match="lonely"):
        split_records([without], {"a": "train"}, "article_id")


def test_assignment_file_round_trip(tmp_path: Path) -> None:
    records = synthetic(30)
    assignment = assign_splits(records, CONFIG)
    path = tmp_path / "splits.json"
    assert load_assignment(path) == {}
    save_assignment(path, assignment, CONFIG)
    assert load_assignment(path) == assignment
    payload = json.loads(path.read_text())
    assert payload["seed"] == CONFIG.seed and payload["group_by"] == CONFIG.group_by


def test_split_config_validation() -> None:
    with pytest.raises(ConfigError, match="dev"):
        validate_config(SplitConfig, {"dev": 0.5, "test": 0.5}, "inline")
    with pytest.raises(ConfigError, match="test"):
        validate_config(SplitConfig, {"test": -0.1}, "inline")
    no_dev = SplitConfig(dev=0.0, test=0.2)
    assignment = assign_splits(synthetic(50), no_dev)
    assert "dev" not in set(assignment.values())


def test_fingerprint_is_order_independent_and_content_sensitive() -> None:
    records = synthetic(10)
    assert fingerprint(records) == fingerprint(list(reversed(records)))
    changed = [
        records[0].model_copy(update={"labels": [SCHEMA.topic_names[0], SCHEMA.topic_names[1]]}),
        *records[1:],
    ]
    assert fingerprint(changed) != fingerprint(records)


# --- paragraphs from plain text ---

TEXT = (
    "\n\n  Kyiv, 3 March — Missiles hit the city overnight.  \n"
    "A second line of the same paragraph.\n"
    "\n"
    "Officials said 🇺🇦 flags flew at half mast.\n"
    "   \t \n"
    "\n\n"
    "Sign up for our newsletter\r\n\r\n"
    "© 2024 Example News. All rights reserved.\n"
)


def test_split_text_offsets_point_at_the_paragraphs() -> None:
    paragraphs = split_text(TEXT)
    assert [p.text for p in paragraphs] == [
        "Kyiv, 3 March — Missiles hit the city overnight.  \nA second line of the same paragraph.",
        "Officials said 🇺🇦 flags flew at half mast.",
        "Sign up for our newsletter",
        "© 2024 Example News. All rights reserved.",
    ]
    assert [p.index for p in paragraphs] == [0, 1, 2, 3]
    for p in paragraphs:
        assert TEXT[p.start : p.end] == p.text
    assert all(a.end < b.start for a, b in pairwise(paragraphs))


@pytest.mark.parametrize("text", ["", "   \n\n \t", "one", "\n\none\n\n"])
def test_split_text_edge_cases(text: str) -> None:
    paragraphs = split_text(text)
    assert [p.text for p in paragraphs] == ([] if not text.strip() else ["one"])
    for p in paragraphs:
        assert text[p.start : p.end] == p.text


# --- paragraphs from HTML ---

HTML = """<!DOCTYPE html>
<html><head><title>Ignored title</title><style>p { color: red }</style>
<script>var tracking = "should never appear";</script></head>
<body>
<header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>
<div class="newsletter">Sign up for the <b>Morning Brief</b> newsletter</div>
<main><article>
<h1>Drones hit Odesa port</h1>
<p>Ukrainian officials said <a href="/x">Shahed drones</a> struck the port of Odesa 🇺🇦 overnight.</p>
<p>Київ said air defences shot down 12 of 15 drones.<br>Two people were injured.</p>
<!-- a comment --><figure><img src="a.jpg"><figcaption>Photo: Jane Roe/Reuters</figcaption></figure>
</article></main>
<aside><ul><li>Related: Grain deal talks</li><li>Related: Sanctions list grows</li></ul></aside>
<footer><p>© 2024 Example News</p><noscript>Enable JavaScript</noscript></footer>
</body></html>"""

EXPECTED_HTML_PARAGRAPHS = [
    "Home World",
    "Sign up for the Morning Brief newsletter",
    "Drones hit Odesa port",
    "Ukrainian officials said Shahed drones struck the port of Odesa 🇺🇦 overnight.",
    "Київ said air defences shot down 12 of 15 drones.",
    "Two people were injured.",
    "Photo: Jane Roe/Reuters",
    "Related: Grain deal talks",
    "Related: Sanctions list grows",
    "© 2024 Example News",
]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_html_to_text_keeps_chrome_as_separate_paragraphs(as_bytes: bool) -> None:
    html = HTML.encode("utf-8") if as_bytes else HTML
    text = html_to_text(html)
    assert [p.text for p in split_text(text)] == EXPECTED_HTML_PARAGRAPHS
    for hidden in ("should never appear", "color: red", "Ignored title", "Enable JavaScript", "comment"):
        assert hidden not in text


def test_html_with_a_declared_legacy_charset() -> None:
    page = '<html><head><meta charset="windows-1251"></head><body><p>Київ і Харків</p></body></html>'
    assert html_to_text(page.encode("cp1251")) == "Київ і Харків"


def test_html_edge_cases() -> None:
    assert html_to_text("") == ""
    assert html_to_text(b"  ") == ""
    assert html_to_text("<p>only</p>") == "only"
    assert looks_like_html(HTML) and looks_like_html("<p>x</p>")
    assert not looks_like_html("Plain text about <3 things.")


def test_read_documents_html_file_matches_html_to_text(tmp_path: Path) -> None:
    path = tmp_path / "page.html.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HTML)
    [document] = read_documents(path)
    assert document.id == "page"
    assert [p.text for p in document.paragraphs()] == EXPECTED_HTML_PARAGRAPHS
    assert content_hash("a  b\nc") == content_hash(" a b c ")


@pytest.fixture(scope="module")
def real_page() -> tuple[bytes, list[str]]:
    shared = shared_dir()
    pages = shared / "data" / "html_pages" if shared else None
    if pages is None or not (pages / "ground-truth.json").is_file():
        pytest.skip("../shared/data/html_pages is not present")
    files = sorted((pages / "html").glob("*.html.gz"))
    if not files:
        pytest.skip("no pages in ../shared/data/html_pages/html")
    truth = json.loads((pages / "ground-truth.json").read_text(encoding="utf-8"))
    page = files[0]
    body = truth[page.name.split(".")[0]]["articleBody"]
    return gzip.decompress(page.read_bytes()), [" ".join(p.split()) for p in body.split("\n") if p.strip()]


def test_real_page_body_paragraphs_survive_and_chrome_is_kept(real_page: tuple[bytes, list[str]]) -> None:
    raw, body = real_page
    paragraphs = [p.text for p in split_text(html_to_text(raw))]
    assert paragraphs == [p.text for p in split_text(html_to_text(raw.decode("utf-8")))]
    # every paragraph of the true article body is one paragraph of ours, exact to the character
    # (curly quotes and all: a wrong charset would garble them), not merged with the chrome around it
    assert any(not p.isascii() for p in body), "this check wants a page with non-ASCII text"
    missing = [b for b in body if b not in paragraphs]
    assert not missing, missing[:3]
    # the chrome is kept, as its own paragraphs (it is the boilerplate class)
    chrome = [p for p in paragraphs if not any(p in b for b in body)]
    assert len(chrome) > len(body)
    assert any("©" in p or "copyright" in p.lower() for p in chrome)
    assert max(len(p) for p in chrome) < max(len(b) for b in body) * 3


# --- UTF-16 offsets ---

SAMPLES = [
    "",
    "plain ascii",
    "Київ — “curly” ✓ é\u0301",
    "🇺🇦 flag first",
    "mixed 😢 and 🇵🇱🇺🇦 and 𝐁old",
    "😀",
]


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("text", SAMPLES)
def test_offset_maps_agree_with_the_utf16_encoding(text: str) -> None:
    to16 = py_to_utf16_map(text)
    assert to16 == [utf16_units(text[:i]) for i in range(len(text) + 1)]
    back = utf16_to_py_map(text)
    assert len(back) == utf16_units(text) + 1
    for i in range(len(text) + 1):
        assert back[to16[i]] == i
    assert has_astral(text) == (utf16_units(text) != len(text))


@pytest.mark.parametrize("text", SAMPLES)
def test_span_conversion_round_trips_for_every_span(text: str) -> None:
    for start in range(len(text) + 1):
        for end in range(start, len(text) + 1):
            u_start, u_end = py_span_to_utf16(text, start, end)
            assert (u_start, u_end) == (utf16_units(text[:start]), utf16_units(text[:end]))
            assert utf16_span_to_py(text, u_start, u_end) == (start, end)
            # what a browser would select is exactly the same surface
            selected = text.encode("utf-16-le")[2 * u_start : 2 * u_end].decode("utf-16-le")
            assert selected == text[start:end]


def test_unit_inside_a_surrogate_pair_and_past_the_end() -> None:
    text = "a😀b"
    assert utf16_to_py_map(text) == [0, 1, 1, 2, 3]
    assert utf16_span_to_py(text, 2, 3) == (1, 2)  # the low surrogate belongs to the emoji
    assert utf16_span_to_py(text, 0, 99) == (0, 3)  # clamped, never an IndexError
