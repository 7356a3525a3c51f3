"""`frontwire run` (README command 1) end to end on the sample export, with smoke-sized training: records
imported under the work dir, both models trained, registered under the configured names and promoted, and the
output says where the models and the MLflow store are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from frontwire.paths import sample_export

SMOKE = ("data.limit=24", "training.epochs=1", "training.max_steps=2", "training.batch_size=8")


def test_run_trains_registers_and_promotes_under_the_configured_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from frontwire.cli import app

    monkeypatch.setenv("FRONTWIRE_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    names = {"classifier": "run-test-classifier", "ner": "run-test-ner"}
    args = ["run", str(sample_export())]
    for kind, option in (("classifier", "--classifier-set"), ("ner", "--ner-set")):
        for override in (*SMOKE, f"mlflow.registered_model={names[kind]}"):
            args += [option, override]
    args += ["--classifier-set", "mlflow.baseline=false"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert summary["tracking_uri"] == uri
    assert summary["data"]["records_dir"] == str(tmp_path / "data") and summary["data"]["records"] > 0
    assert (tmp_path / "data" / "records.jsonl").is_file()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for kind, name in names.items():
        entry = summary[kind]
        assert (Path(entry["model_dir"]) / "frontwire.json").is_file()
        assert f"Models: {summary['classifier']['model_dir']}" in result.output and f"MLflow: {uri}" in result.output
        # the version `frontwire run` trained is the one promoted, in the registered model its config names
        assert entry["promotion"]["registered_model"] == name and entry["promotion"]["decision"] == "promoted"
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == entry["registered_version"] and champion.run_id == entry["run_id"]
        # data.limit reached the trainer: 24 records per split at most
        assert int(client.get_run(entry["run_id"]).data.params["data.train_size"]) <= 24
    assert {m.name for m in client.search_registered_models()} == set(names.values())
