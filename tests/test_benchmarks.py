"""Benchmark readers (CoNLL-2003, WNUT-17, Reuters ModApte) and a 2-step run through `frontwire train benchmark`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.conll import read_conll, tags_to_spans
from frontwire.paths import SHARED_ENV, shared_dir
from frontwire.records import LineError
from frontwire.train.benchmark_data import BENCHMARKS, BenchmarkDataMissing, benchmark_dir, carve_dev, read_reuters
from frontwire.train.benchmarks import EXPERIMENT, conll_token_metrics

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

The DT B-NP O
European NNP I-NP I-ORG
Commission NNP I-NP I-ORG
said VBD B-VP O
"""

# WNUT-17: token<TAB>tag, a BOM before the first token, blank lines that are a lone tab, stray BOMs inside.
WNUT = (
    "\ufeff@paulwalk\tO\nEmpire\tB-location\nState\tI-location\nBuilding\tI-location\n=\tO\nESB\tB-location\n"
    "\t\nDubbz\ufeff\tB-person\nrocks\tO\n\ufeff\n"
)

REUTERS = [
    {
        "id": 1,
        "title": "BAHIA COCOA REVIEW",
        "text": "Showers continued throughout the week\nin the Bahia cocoa zone.",
        "labels": ["cocoa"],
    },
    {"id": 2, "title": "", "text": "Grain and wheat shipments rose.\n Reuter", "labels": ["wheat", "grain"]},
    {"id": 3, "title": "NO TOPIC", "text": "Nothing to see.", "labels": []},
]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_tags_to_spans_iob2_and_lenient_i() -> None:
    tokens = ["a", "New", "York", "x", "Times", "Bob", "Ann", "Lee"]
    tags = ["O", "B-LOC", "I-LOC", "O", "I-ORG", "I-PER", "B-PER", "I-PER"]
    text, spans = tags_to_spans(tokens, tags)
    assert text == "a New York x Times Bob Ann Lee"
    # I- after O opens an entity; I-PER after ORG opens a new one; B-PER after PER starts another
    assert [(text[s.start : s.end], s.label) for s in spans] == [
        ("New York", "LOC"),
        ("Times", "ORG"),
        ("Bob", "PER"),
        ("Ann Lee", "PER"),
    ]


def test_read_conll_four_columns(tmp_path: Path) -> None:
    errors: list[LineError] = []
    records = read_conll(_write(tmp_path / "train.txt", CONLL), errors)
    assert errors == []
    assert [r.text for r in records] == [
        "EU rejects German call to boycott British lamb .",
        "Peter Blackburn",
        "The European Commission said",
    ]
    assert [[(r.surface(s), s.label) for s in r.entities] for r in records] == [
        [("EU", "ORG"), ("German", "MISC"), ("British", "MISC")],
        [("Peter Blackburn", "PER")],
        [("European Commission", "ORG")],
    ]
    assert [r.meta["document"] for r in records] == [1, 1, 2]
    assert records[1].meta["line"] == 13
    assert len({r.id for r in records}) == 3


def test_read_conll_bad_lines_reported_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.txt", "EU B-ORG\nrejects\n\nGood B-PER\n\nx Q-ORG\n\ny B-\n\nz B-O\n\nLast O\n")
    errors: list[LineError] = []
    records = read_conll(path, errors)
    assert [r.text for r in records] == ["Good", "Last"]  # a sentence with a bad line is dropped whole
    assert [(Path(e.path).name, e.line) for e in errors] == [
        ("bad.txt", 2),
        ("bad.txt", 6),
        ("bad.txt", 8),
        ("bad.txt", 10),
    ]
    assert "column" in errors[0].reason and "Q-ORG" in errors[1].reason


def test_read_conll_wnut_two_columns_with_bom(tmp_path: Path) -> None:
    errors: list[LineError] = []
    records = read_conll(_write(tmp_path / "emerging.dev.conll", WNUT), errors)
    assert errors == []
    assert [r.text for r in records] == ["@paulwalk Empire State Building = ESB", "Dubbz rocks"]
    assert [[(r.surface(s), s.label) for s in r.entities] for r in records] == [
        [("Empire State Building", "location"), ("ESB", "location")],
        [("Dubbz", "person")],
    ]


def test_read_reuters_and_dev_carving(tmp_path: Path) -> None:
    path = _write(tmp_path / "modapte_train.jsonl", "".join(json.dumps(r) + "\n" for r in REUTERS))
    records = read_reuters(path, ["cocoa", "grain", "wheat"])
    assert [r.labels for r in records] == [["cocoa"], ["grain", "wheat"], []]
    assert records[0].text.startswith("BAHIA COCOA REVIEW\n\nShowers") and records[1].text.startswith("Grain")

    many = [records[0].model_copy(update={"id": f"reuters-{i}"}) for i in range(200)]
    train, dev = carve_dev(many)
    assert len(dev) == 20 and len(train) == 180 and not {r.id for r in train} & {r.id for r in dev}
    _, again_dev = carve_dev(list(reversed(many)))
    assert {r.id for r in again_dev} == {r.id for r in dev}  # depends on ids and seed, not on file order
    assert [r.id for r in train] == [r.id for r in many if r.id not in {d.id for d in dev}]  # order kept


def test_read_reuters_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(REUTERS[0]),
        "{not json",
        json.dumps({**REUTERS[1], "labels": ["nope"]}),
        json.dumps({"id": 9, "title": "", "text": " ", "labels": []}),
        json.dumps(REUTERS[2]),
    ]
    errors: list[LineError] = []
    records = read_reuters(_write(tmp_path / "x.jsonl", "\n".join(lines) + "\n"), ["cocoa", "grain", "wheat"], errors)
    assert [r.id for r in records] == ["reuters-1", "reuters-3"]
    assert [e.line for e in errors] == [2, 3, 4]
    assert "nope" in errors[1].reason


def test_conll_token_metrics_scores_on_file_tokens() -> None:
    text, spans = tags_to_spans(["U.S.-based", "Acme", "Corp", "said"], ["B-MISC", "B-ORG", "I-ORG", "O"])
    from frontwire.records import Record

    record = Record(id="r", text=text, entities=spans)
    perfect = conll_token_metrics([record], [[(s.start, s.end, s.label) for s in spans]])
    assert perfect["micro"]["f1"] == 1.0 and set(perfect["per_type"]) == {"MISC", "ORG"}
    # a prediction covering part of a token tags the whole token, as conlleval sees it
    partial = conll_token_metrics([record], [[(0, 4, "MISC"), (11, 15, "ORG")]])
    assert partial["per_type"]["MISC"]["f1"] == 1.0 and partial["per_type"]["ORG"]["f1"] == 0.0


def test_missing_benchmark_files_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_ENV, str(tmp_path))
    with pytest.raises(BenchmarkDataMissing, match="conll2003"):
        benchmark_dir("conll2003")
    result = CliRunner().invoke(app, ["train", "benchmark", "reuters", "--limit", "3"])
    assert result.exit_code == 2 and "modapte_train.jsonl" in result.output
    result = CliRunner().invoke(app, ["train", "benchmark", "imagenet"])
    assert result.exit_code == 2 and "conll2003" in result.output


SHARED = shared_dir()
needs_shared = pytest.mark.skipif(
    SHARED is None or not (SHARED / "benchmarks").is_dir(), reason="no ../shared/benchmarks"
)


@needs_shared
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_readers_on_the_first_200_lines_of_the_shared_files(name: str, tmp_path: Path) -> None:
    try:
        root = benchmark_dir(name)
    except BenchmarkDataMissing as err:
        pytest.skip(str(err))
    bench = BENCHMARKS[name]
    for role, file_name in bench.files.items():
        if role == "categories":
            continue
        with (root / file_name).open(encoding="utf-8") as handle:
            head = "".join(line for _, line in zip(range(200), handle, strict=False))
        errors: list[LineError] = []
        path = _write(tmp_path / file_name, head)
        records = read_conll(path, errors) if bench.kind == "ner" else read_reuters(path, None, errors)
        assert records and errors == [], errors[:3]
        assert all("-DOCSTART-" not in r.text for r in records)
        for record in records:
            for span in record.entities:
                surface = record.surface(span)
                assert surface and surface == surface.strip()


def _synthetic_shared(root: Path) -> Path:
    """A stand-in shared folder (CoNLL + Reuters) for machines without ../shared."""
    sentences = CONLL.split("\n\n")
    body = "\n\n".join(s for s in sentences if not s.startswith("-DOCSTART-"))
    for part in ("train.txt", "valid.txt", "test.txt"):
        _write(root / "benchmarks/conll2003" / part, "-DOCSTART- -X- -X- O\n\n" + "\n\n".join([body] * 15) + "\n")
    docs = [{**REUTERS[i % 2], "id": i} for i in range(40)]
    for part in ("train", "test"):
        _write(root / f"benchmarks/reuters21578/modapte_{part}.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    _write(root / "benchmarks/reuters21578/modapte_categories.json", json.dumps(["cocoa", "grain", "wheat"]))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conll2003", "reuters"])
def test_two_step_benchmark_run_through_the_command(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        benchmark_dir(name)
    except BenchmarkDataMissing:
        monkeypatch.setenv(SHARED_ENV, str(_synthetic_shared(tmp_path / "shared")))
    monkeypatch.setenv("FRONTWIRE_HOME", str(tmp_path / "home"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "results.json"
    _write(out, json.dumps({"other": {"kept": True}}))
    args = [
        "train",
        "benchmark",
        name,
        "--limit",
        "30",
        "--set",
        "training.max_steps=2",
        "--set",
        "training.epochs=1",
        "--set",
        "training.batch_size=8",
        "--set",
        "training.threads=1",
        "--set",
        f"mlflow.tracking_uri={uri}",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)

    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["other"] == {"kept": True}  # merged, not overwritten
    entry = results[name]
    assert entry["dataset"]["train_size"] == 30 and entry["dataset"]["test_size"] == 30
    assert entry["training"]["steps"] == 2 and entry["anchors"] == list(map(dict, BENCHMARKS[name].anchors))
    headline = entry["headline"]
    assert 0.0 <= headline["value"] <= 1.0 and headline["metric"] == BENCHMARKS[name].headline
    if name == "conll2003":
        assert set(entry["test_conll_tokens"]["per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
        assert "test_per_type_f1" in headline
    else:
        assert 0.0 <= entry["baseline"]["test"]["micro_f1"] <= 1.0
        assert "test_macro_f1" in headline and headline["baseline_test_micro_f1"] is not None

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(entry["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.tags["frontwire.benchmark"] == name and "benchmark_" + headline["metric"] in run.data.metrics
    assert client.search_registered_models() == []  # benchmarks never register


def test_vectorized_threshold_tuning_matches_sklearn_f1_per_threshold() -> None:
    """tune_thresholds computes F1 for the whole grid at once (90 Reuters labels made sklearn's per-threshold
    f1_score the slowest part of a run); it must pick what the per-threshold sklearn search picked."""
    import numpy as np
    from sklearn.metrics import f1_score

    from frontwire.metrics import tune_thresholds

    def reference(y: np.ndarray, scores: np.ndarray, default: float) -> list[float]:
        grid = np.round(np.arange(0.05, 0.95 + 1e-9, 0.01), 2)
        return [
            default
            if y[:, c].sum() == 0
            else float(
                max(
                    grid,
                    key=lambda t: (round(f1_score(y[:, c], scores[:, c] >= t, zero_division=0), 6), -abs(t - default)),
                )
            )
            for c in range(y.shape[1])
        ]

    rng = np.random.default_rng(0)
    for default in (0.5, 0.3):
        y = (rng.random((60, 6)) < 0.2).astype(np.int64)
        y[:, 0] = 0  # a label without positives keeps the default
        scores = np.round(np.clip(y * 0.3 + rng.random((60, 6)) * 0.7, 0, 1), 2)  # coarse: many ties
        tuned = tune_thresholds(y, scores, [f"l{i}" for i in range(6)], default=default)
        assert list(tuned.values()) == reference(y, scores, default)
