"""A tiny classifier and NER model (2 steps each on the sample export) for benches that need real model dirs
but not good ones: the architecture, and so the cost of a forward pass and the files on disk, are the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def train_tiny_models(home: Path) -> dict[str, Any]:
    """{"classifier": outcome, "ner": outcome} (train outcomes with `.model_dir`), everything under `home`."""
    os.environ["FRONTWIRE_HOME"] = str(home)
    from frontwire.labeling.importer import import_tasks, read_export_file
    from frontwire.labeling.settings import load_labeling_config
    from frontwire.paths import sample_export
    from frontwire.schema import load_schema
    from frontwire.train.classifier import train_classifier
    from frontwire.train.data import load_split_data
    from frontwire.train.ner import train_ner
    from frontwire.train.settings import load_classifier_config, load_ner_config

    schema = load_schema()
    import_tasks(read_export_file(sample_export()), home / "data", schema, load_labeling_config(), "sample")
    data = load_split_data(home / "data", schema, limit=24)
    common = ("training.epochs=1", "training.max_steps=2", "training.batch_size=8",
              f"mlflow.tracking_uri=sqlite:///{home / 'mlflow.db'}", "mlflow.baseline=false")
    return {
        "classifier": train_classifier(load_classifier_config(None, (*common, f"output.dir={home / 'classifier'}")),
                                       schema, data),
        "ner": train_ner(load_ner_config(None, (*common, f"output.dir={home / 'ner'}")), schema, data),
    }
