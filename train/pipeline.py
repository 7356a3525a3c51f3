"""`frontwire run`: the main job on embedded defaults — import the annotations, train both models, register
them, promote each to `champion` when it beats the current one, and say where everything is."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from frontwire.labeling.importer import import_tasks, read_export_file
from frontwire.labeling.settings import load_labeling_config
from frontwire.paths import default_data_dir, default_export
from frontwire.schema import load_schema
from frontwire.train.classifier import train_classifier
from frontwire.train.data import load_split_data
from frontwire.train.ner import train_ner
from frontwire.train.settings import load_classifier_config, load_ner_config

log = logging.getLogger(__name__)


def run_pipeline(
    export: Path | None = None,
    classifier_overrides: tuple[str, ...] = (),
    ner_overrides: tuple[str, ...] = (),
    promote: bool = True,
) -> dict[str, Any]:
    schema = load_schema()
    source = export or default_export()
    data_dir = default_data_dir()
    imported = import_tasks(read_export_file(source), data_dir, schema, load_labeling_config(), str(source))
    summary: dict[str, Any] = {
        "data": {
            "source": str(source),
            "records_dir": str(data_dir),
            **{k: imported.summary[k] for k in ("tasks", "records", "errors", "fingerprint")},
        }
    }
    configs = {
        "classifier": load_classifier_config(None, classifier_overrides),
        "ner": load_ner_config(None, ner_overrides),
    }
    # each model reads the records with its own config's data.limit (a smoke run caps them), read once per limit
    splits = {limit: load_split_data(data_dir, schema, limit) for limit in {c.data.limit for c in configs.values()}}
    outcomes = {
        "classifier": train_classifier(configs["classifier"], schema, splits[configs["classifier"].data.limit]),
        "ner": train_ner(configs["ner"], schema, splits[configs["ner"].data.limit]),
    }
    for kind, outcome in outcomes.items():
        entry: dict[str, Any] = {
            "model_dir": str(outcome.model_dir),
            "run_id": outcome.run_id,
            "registered_version": outcome.version,
            "dev_micro_f1": outcome.metrics["dev"]["micro"]["f1"],
            "dev_macro_f1": outcome.metrics["dev"]["macro"]["f1"],
        }
        if promote and outcome.version is not None:
            from frontwire.train.registry import promote as promote_version

            entry["promotion"] = promote_version(
                kind,
                version=outcome.version,
                tracking_uri=outcome.tracking_uri,
                registered_model=configs[kind].mlflow.registered_model,
            ).as_dict()
        summary[kind] = entry
        summary["tracking_uri"] = outcome.tracking_uri
    return summary
