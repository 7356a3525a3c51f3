"""Shared pytest fixtures for frontwire's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from label_studio_server import (
    BIN_ENV,
    LabelStudioServer,
    find_executable,
    reuse_config,
)

#: CI sets this so a missing Label Studio fails the run instead of skipping.
REQUIRE_LS_ENV = "FRONTWIRE_REQUIRE_LABEL_STUDIO"


@pytest.fixture(scope="session")
def tokenizer():
    """The default encoder's tokenizer (bundled with the package: no download)."""
    from frontwire.modeling import load_tokenizer, resolve_base_model

    return load_tokenizer(resolve_base_model("default"))


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioServer]:
    """A real Label Studio server on loopback, shared by the whole session.

    Session-scoped because the first start runs ~70 s of migrations. Skips
    when no ``label-studio`` executable is installed (a plain dev checkout),
    unless ``FRONTWIRE_REQUIRE_LABEL_STUDIO=1``, where that is a failure.
    """
    if reuse_config() is None and find_executable() is None:
        reason = f"Label Studio not installed: set {BIN_ENV}, install it into .venv-ls/, or put label-studio on PATH"
        if os.environ.get(REQUIRE_LS_ENV) == "1":
            pytest.fail(f"{REQUIRE_LS_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with LabelStudioServer() as server:
        yield server


@dataclass(frozen=True)
class TinyModels:
    """A classifier and an NER model trained for a few steps on the repo's sample data, registered in a real
    SQLite MLflow store. Their quality is meaningless; their format, registry entries and code paths are real."""

    classifier_dir: Path
    ner_dir: Path
    tracking_uri: str
    home: Path
    data_dir: Path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyModels]:
    from frontwire.labeling.importer import import_tasks, read_export_file
    from frontwire.labeling.settings import load_labeling_config
    from frontwire.paths import sample_export
    from frontwire.schema import load_schema
    from frontwire.train.classifier import train_classifier
    from frontwire.train.data import load_split_data
    from frontwire.train.ner import train_ner
    from frontwire.train.settings import load_classifier_config, load_ner_config

    home = tmp_path_factory.mktemp("frontwire-home")
    previous = os.environ.get("FRONTWIRE_HOME")
    os.environ["FRONTWIRE_HOME"] = str(home)
    schema = load_schema()
    data_dir = home / "data"
    import_tasks(read_export_file(sample_export()), data_dir, schema, load_labeling_config(), "sample")
    data = load_split_data(data_dir, schema, limit=24)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    common = ("training.epochs=1", "training.max_steps=2", "training.batch_size=8", f"mlflow.tracking_uri={uri}")
    classifier = train_classifier(
        load_classifier_config(None, (*common, "mlflow.baseline=false", f"output.dir={home / 'models/classifier'}")),
        schema,
        data,
        run_name="tiny-classifier",
    )
    # 40 steps (~30 s more) make the NER model tag some names, so span checks downstream have spans to check
    ner = train_ner(
        load_ner_config(
            None, (*common, "training.epochs=20", "training.max_steps=40", f"output.dir={home / 'models/ner'}")
        ),
        schema,
        data,
        run_name="tiny-ner",
    )
    yield TinyModels(classifier.model_dir, ner.model_dir, uri, home, data_dir)
    if previous is None:
        os.environ.pop("FRONTWIRE_HOME", None)
    else:
        os.environ["FRONTWIRE_HOME"] = previous
