"""Real tiny trainings and the model registry: determinism, kill-and-resume, registry aliases and
`frontwire promote` against a real SQLite MLflow store, and the train commands' output.

The trainings here use a tiny random 2-layer BERT that shares the default encoder's tokenizer: the code paths
(windows, loop, checkpoints, MLflow runs, registry) are the real ones, and each run takes seconds.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file
from training_helpers import Interrupted, same_weights

from frontwire.metrics import entity_metrics, topic_metrics
from frontwire.modeling import WEIGHTS_FILE
from frontwire.predictor import EntityModel, TopicModel
from frontwire.records import fingerprint
from frontwire.schema import load_schema
from frontwire.train import classifier as classifier_module
from frontwire.train import ner as ner_module
from frontwire.train import run_steps
from frontwire.train.registry import PromotionError, promote
from frontwire.train.settings import load_classifier_config, load_ner_config

SCHEMA = load_schema()


# --- real tiny trainings: determinism, resume, registry ------------------------------------------------------------


@dataclass
class World:
    home: Path
    data_dir: Path
    encoder: Path
    uri: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tokenizer):
    from transformers import BertConfig, BertModel

    from frontwire.labeling.importer import import_tasks, read_export_file
    from frontwire.labeling.settings import load_labeling_config
    from frontwire.paths import sample_export

    home = tmp_path_factory.mktemp("training")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRONTWIRE_HOME", str(home))
        data_dir = home / "data"
        import_tasks(read_export_file(sample_export()), data_dir, SCHEMA, load_labeling_config(), "sample")
        encoder = home / "tiny-bert"
        torch.manual_seed(0)
        BertModel(
            BertConfig(
                vocab_size=tokenizer.vocab_size,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
            )
        ).save_pretrained(encoder)
        tokenizer.save_pretrained(encoder)
        yield World(home, data_dir, encoder, f"sqlite:///{home / 'mlflow.db'}")


def classifier_overrides(world: World, out: Path, limit: int = 8) -> tuple[str, ...]:
    # 8 paragraphs in batches of 4: two shuffled batches per epoch; thresholds stay at 0.5 (tuning is tested above)
    return (
        f"data.source={world.data_dir}",
        f"data.limit={limit}",
        "training.epochs=2",
        "training.batch_size=4",
        "training.max_steps=4",
        f"model.base_model={world.encoder}",
        "thresholds.tune=false",
        f"mlflow.tracking_uri={world.uri}",
        "mlflow.baseline=false",
        f"output.dir={out}",
    )


@dataclass
class ClassifierRuns:
    first: run_steps.TrainOutcome
    second: run_steps.TrainOutcome
    resumed: run_steps.TrainOutcome
    aliases_after: list[dict[str, int]]  # registry aliases after each registered training
    interrupted_run_status: str


@pytest.fixture(scope="module")
def classifier_runs(world: World) -> ClassifierRuns:
    """Two identical trainings, then the same training killed after epoch 1 and resumed with --resume."""
    client, name = world.client(), "frontwire-classifier"
    first = classifier_module.train_classifier(
        load_classifier_config(None, classifier_overrides(world, world.home / "models/first")), SCHEMA
    )
    aliases = [dict(client.get_registered_model(name).aliases)]
    second = classifier_module.train_classifier(
        load_classifier_config(None, classifier_overrides(world, world.home / "models/second")), SCHEMA
    )
    aliases.append(dict(client.get_registered_model(name).aliases))

    config = load_classifier_config(None, classifier_overrides(world, world.home / "models/resumed"))
    real_fit = run_steps.fit

    def fit_killed_after_epoch_1(*args, on_epoch=None, **kwargs):
        def on_epoch_then_die(epoch: int, rec: dict) -> None:
            if on_epoch is not None:
                on_epoch(epoch, rec)
            raise Interrupted

        return real_fit(*args, on_epoch=on_epoch_then_die, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_steps, "fit", fit_killed_after_epoch_1)
        with pytest.raises(Interrupted):
            classifier_module.train_classifier(config, SCHEMA)
    interrupted = client.search_runs(
        [first_experiment(client)], order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    resumed = classifier_module.train_classifier(config, SCHEMA, resume=True)
    aliases.append(dict(client.get_registered_model(name).aliases))
    return ClassifierRuns(first, second, resumed, aliases, interrupted.info.status)


def first_experiment(client: MlflowClient) -> str:
    return client.get_experiment_by_name("frontwire").experiment_id


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / WEIGHTS_FILE))


def test_same_config_and_data_give_identical_weights_and_metrics(classifier_runs: ClassifierRuns) -> None:
    first, second = classifier_runs.first, classifier_runs.second
    assert first.metrics["training"]["steps"] == second.metrics["training"]["steps"] == 4
    assert first.metrics["dev"] == second.metrics["dev"]
    assert first.metrics["test"] == second.metrics["test"]
    assert same_weights(weights(first.model_dir), weights(second.model_dir))
    assert (
        json.loads((first.model_dir / "frontwire.json").read_text())["dataset"]
        == json.loads((second.model_dir / "frontwire.json").read_text())["dataset"]
    )


def test_training_killed_after_epoch_1_and_resumed_equals_an_uninterrupted_run(classifier_runs: ClassifierRuns) -> None:
    assert classifier_runs.interrupted_run_status == "FAILED"
    first, resumed = classifier_runs.first, classifier_runs.resumed
    assert resumed.metrics["training"]["steps"] == first.metrics["training"]["steps"]
    assert resumed.metrics["training"]["best_epoch"] == first.metrics["training"]["best_epoch"]
    assert same_weights(weights(first.model_dir), weights(resumed.model_dir))
    assert resumed.metrics["dev"] == first.metrics["dev"]


def test_registry_candidate_moves_and_promotion_uses_real_models(world: World, classifier_runs: ClassifierRuns) -> None:
    client, name = world.client(), "frontwire-classifier"
    runs = classifier_runs
    assert (runs.first.version, runs.second.version, runs.resumed.version) == ("1", "2", "3")
    assert runs.aliases_after == [{"candidate": 1}, {"candidate": 2}, {"candidate": 3}]
    # the logged model dir is the model, not the training folder: no checkpoints (optimizer state) in the store
    logged = {Path(a.path).name for a in client.list_artifacts(runs.first.run_id, "model_dir")}
    assert {"frontwire.json", WEIGHTS_FILE, "README.md"} <= logged and "checkpoints" not in logged

    first = promote("classifier", version=1, tracking_uri=world.uri)
    assert (first.decision, first.method, first.champion_version) == ("promoted", "no-champion", None)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # v3 (resumed) has the same dev set and identical weights: a tie on logged metrics is not a win
    tie = promote("classifier", tracking_uri=world.uri)
    assert (tie.candidate_version, tie.champion_version, tie.decision, tie.method) == ("3", "1", "refused", "logged")
    assert "tie" in tie.reason and not tie.promoted
    dev = runs.first.metrics["dev"]
    assert (
        tie.candidate_scores
        == tie.champion_scores
        == {"dev_macro_f1": pytest.approx(dev["macro"]["f1"]), "dev_micro_f1": pytest.approx(dev["micro"]["f1"])}
    )
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    tags = client.get_model_version(name, "3").tags
    assert tags["promotion.decision"] == "refused" and tags["promotion.reason"] == tie.reason
    assert tags["promotion.champion_version"] == "1"

    forced = promote("classifier", force=True, tracking_uri=world.uri)
    assert (forced.decision, forced.promoted) == ("forced", True) and forced.reason.startswith("forced")
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"
    assert client.get_model_version(name, "1").tags["promotion.replaced_by"] == "3"

    # a candidate trained on other data (another dev set): both models re-evaluated on the candidate's dev split
    other = classifier_module.train_classifier(
        load_classifier_config(None, classifier_overrides(world, world.home / "models/other", limit=6)), SCHEMA
    )
    assert other.version == "4"
    decision = promote("classifier", tracking_uri=world.uri)
    assert decision.method == "re-evaluated" and decision.champion_version == "3"
    assert decision.dev_fingerprint != decision.champion_dev_fingerprint
    assert "re-evaluated" in decision.reason
    # the candidate's figure reproduces what its training logged on that dev set ...
    assert decision.candidate_scores["dev_macro_f1"] == pytest.approx(other.metrics["dev"]["macro"]["f1"])
    assert decision.candidate_scores["dev_micro_f1"] == pytest.approx(other.metrics["dev"]["micro"]["f1"])
    # ... and the champion's is its model scored on the candidate's dev records
    from frontwire.train.data import load_split_data

    dev_records = load_split_data(world.data_dir, SCHEMA, limit=6).dev
    champion = TopicModel.load(runs.resumed.model_dir, "cpu")
    y_true, scores = classifier_module.score_records(champion, dev_records)
    expected = topic_metrics(
        y_true, classifier_module.decoded(champion, scores, champion.thresholds), champion.meta.labels
    )
    assert decision.champion_scores["dev_macro_f1"] == pytest.approx(expected["macro"]["f1"])
    beats = (decision.candidate_scores["dev_macro_f1"], decision.candidate_scores["dev_micro_f1"]) > (
        decision.champion_scores["dev_macro_f1"],
        decision.champion_scores["dev_micro_f1"],
    )
    assert decision.promoted == beats
    assert str(client.get_model_version_by_alias(name, "champion").version) == ("4" if beats else "3")
    assert client.get_model_version(name, "4").tags["promotion.method"] == "re-evaluated"


def test_ner_promotion_re_evaluates_on_the_candidate_dev_set(world: World) -> None:
    client, name = world.client(), "frontwire-ner"
    outcome = ner_module.train_ner(
        load_ner_config(
            None,
            (
                f"data.source={world.data_dir}",
                "data.limit=8",
                "training.epochs=1",
                "training.max_steps=1",
                "training.batch_size=8",
                f"model.base_model={world.encoder}",
                "model.max_length=32",
                "model.stride=8",
                f"mlflow.tracking_uri={world.uri}",
                f"output.dir={world.home / 'models/ner'}",
            ),
        ),
        SCHEMA,
    )
    assert promote("ner", tracking_uri=world.uri).decision == "promoted"

    # the same model, registered again from a run that describes a smaller dev set (first 5 dev paragraphs)
    from frontwire.train.data import load_split_data

    dev = load_split_data(world.data_dir, SCHEMA).dev[:5]
    experiment = first_experiment(client)
    run = client.create_run(experiment, tags={"dataset.source": str(world.data_dir)})
    client.log_param(run.info.run_id, "data.dev_fingerprint", fingerprint(dev))
    client.log_param(run.info.run_id, "data.dev_size", "5")
    for path in sorted(outcome.model_dir.iterdir()):
        if path.is_file():
            client.log_artifact(run.info.run_id, str(path), "model_dir")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model_dir", run_id=run.info.run_id)
    client.set_registered_model_alias(name, "candidate", version.version)

    decision = promote("ner", tracking_uri=world.uri)
    assert decision.method == "re-evaluated" and decision.metrics == ["dev_micro_f1"]
    model = EntityModel.load(outcome.model_dir, "cpu")
    expected = entity_metrics(
        [r.text for r in dev], ner_module.gold_spans(dev), ner_module.predicted_spans(model, dev)
    )["micro"]["f1"]
    assert decision.candidate_value == pytest.approx(expected) == decision.champion_value
    assert decision.decision == "refused" and "tie" in decision.reason
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"


# --- promotion decisions on logged metrics (runs made with the MLflow API) -----------------------------------------


def logged_version(
    world: World,
    name: str,
    metrics: dict[str, float],
    fingerprint_: str = "dev-a",
    epoch_values: dict[str, list[float]] | None = None,
) -> str:
    """A run with training's logging pattern (per-epoch values at steps 1..n, final ones at step 0, later),
    registered as a new version of `name` with alias candidate."""
    client = world.client()
    experiment = client.get_experiment_by_name("promote-logged")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("promote-logged", artifact_location=(world.home / "mlartifacts-logged").as_uri())
    )
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "data.dev_fingerprint", fingerprint_)
    t0 = 1_700_000_000_000
    for key, values in (epoch_values or {}).items():
        for step, value in enumerate(values, start=1):
            client.log_metric(run_id, key, value, timestamp=t0 + step, step=step)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, timestamp=t0 + 1000, step=0)
    client.set_terminated(run_id)
    with contextlib.suppress(MlflowException):  # already there
        client.create_registered_model(name)
    version = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version
    client.set_registered_model_alias(name, "candidate", version)
    return str(version)


def test_promotion_decisions_on_logged_metrics(world: World) -> None:
    name, client = "logged-classifier", world.client()

    def go(**kwargs):
        return promote("classifier", tracking_uri=world.uri, registered_model=name, **kwargs)

    def champion() -> str:
        return str(client.get_model_version_by_alias(name, "champion").version)

    logged_version(world, name, {"dev_macro_f1": 0.60, "dev_micro_f1": 0.70})
    assert go().decision == "promoted" and champion() == "1"

    # worse on the final figures, although its epochs logged higher ones (which MLflow shows as "latest")
    logged_version(
        world, name, {"dev_macro_f1": 0.55, "dev_micro_f1": 0.90}, epoch_values={"dev_macro_f1": [0.90, 0.95]}
    )
    worse = go()
    assert (worse.decision, worse.method, worse.candidate_value, worse.champion_value) == (
        "refused",
        "logged",
        0.55,
        0.60,
    )
    assert "does not beat" in worse.reason and "dev_macro_f1 0.5500 vs 0.6000" in worse.reason
    assert champion() == "1"
    tags = client.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "refused" and tags["promotion.candidate_value"] == "0.550000"

    logged_version(world, name, {"dev_macro_f1": 0.60, "dev_micro_f1": 0.75})
    tie_break = go()
    assert tie_break.decision == "promoted" and "dev_micro_f1 0.7500 vs 0.7000" in tie_break.reason
    assert champion() == "3"

    logged_version(world, name, {"dev_macro_f1": 0.60, "dev_micro_f1": 0.75})
    assert go().decision == "refused" and champion() == "3"
    forced = go(force=True)
    assert (forced.decision, forced.promoted, champion()) == ("forced", True, "4")
    assert go(version=4).decision == "already-champion"

    # another dev set and nothing to re-evaluate with: refused with the reason, unless forced
    logged_version(world, name, {"dev_macro_f1": 0.99, "dev_micro_f1": 0.99}, fingerprint_="dev-b")
    with pytest.raises(PromotionError, match="model_dir"):
        go()
    unchecked = go(force=True)
    assert (unchecked.decision, unchecked.method, champion()) == ("forced", "not-compared", "5")

    with pytest.raises(PromotionError, match="not found"):
        promote("classifier", tracking_uri=world.uri, registered_model="no-such-model")


def test_ner_promotion_compares_entity_f1(world: World) -> None:
    name = "logged-ner"
    logged_version(world, name, {"dev_micro_f1": 0.50})
    assert promote("ner", tracking_uri=world.uri, registered_model=name).decision == "promoted"
    logged_version(world, name, {"dev_micro_f1": 0.55, "dev_macro_f1": 0.10})
    decision = promote("ner", tracking_uri=world.uri, registered_model=name)
    assert (decision.decision, decision.metrics, decision.candidate_value) == ("promoted", ["dev_micro_f1"], 0.55)


def test_promote_command(world: World) -> None:
    from typer.testing import CliRunner

    from frontwire.cli import app

    name, runner = "logged-cli", CliRunner()
    args = ["promote", "classifier", "--tracking-uri", world.uri, "--name", name]
    logged_version(world, name, {"dev_macro_f1": 0.5, "dev_micro_f1": 0.5})
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"] == "promoted"
    logged_version(world, name, {"dev_macro_f1": 0.4, "dev_micro_f1": 0.9})
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    body = json.loads(refused.stdout)
    assert body["decision"] == "refused" and (body["candidate_value"], body["champion_value"]) == (0.4, 0.5)
    forced = runner.invoke(app, [*args, "--version", "2", "--force"])
    assert forced.exit_code == 0 and json.loads(forced.stdout)["decision"] == "forced"
    missing = runner.invoke(app, ["promote", "ner", "--tracking-uri", world.uri, "--name", "nothing-here"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_train_commands_print_where_the_model_and_run_are(world: World, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from frontwire.cli import app

    runner = CliRunner()
    common = [arg for override in classifier_overrides(world, tmp_path / "unused", limit=6)
              if not override.startswith(("output.dir", "thresholds", "mlflow.baseline", "data.source"))
              for arg in ("--set", override)]
    refused = runner.invoke(app, ["train", "ner", "--data", str(world.data_dir), "--resume", *common])
    assert refused.exit_code == 2 and "--resume needs the run's folder" in refused.output
    for kind, extra, figures in (
        ("classifier", ["--set", "mlflow.baseline=false"], {"dev_micro_f1", "dev_macro_f1", "dev_per_label_f1"}),
        ("ner", [], {"dev_entity_f1", "dev_per_type_f1"}),
    ):
        out = tmp_path / kind
        result = runner.invoke(app, ["train", kind, "--data", str(world.data_dir), *common, *extra,
                                     "--set", f"output.dir={out}"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output[result.output.index("{"):])
        assert Path(summary["model_dir"]) == out and (out / "frontwire.json").is_file()
        assert figures <= set(summary) and summary["tracking_uri"] == world.uri
        run = world.client().get_run(summary["run_id"])
        assert run.data.tags["frontwire.kind"] == kind and run.data.params["output.dir"] == str(out)
        version = world.client().get_model_version(f"frontwire-{kind}", summary["registered_version"])
        assert version.run_id == run.info.run_id
