"""`frontwire train domain-adapt`: which archive paragraphs it learns from, and that its output is a base model."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from frontwire.modeling import resolve_base_model
from frontwire.train.domain import DomainConfig, archive_paragraphs, domain_adapt, masked_lm_loss

HELD_OUT = "Russian missiles struck an energy facility near Lviv overnight, the governor said."
PARAGRAPHS = [
    "Ukrainian forces pushed back Russian troops near Bakhmut, the general staff said on Monday.",
    "EU ministers agreed a new package of sanctions on Russian oil exports and shadow fleet tankers.",
    "Zelensky met the Polish president in Warsaw to discuss air defence deliveries.",
    "Air raid alerts sounded across the Kyiv region for three hours after midnight.",
    "NATO allies pledged further artillery ammunition at the summit in Vilnius.",
    "Officials in Kharkiv reported damage to residential buildings after a drone attack.",
]


def write_archive(path: Path) -> Path:
    articles = [
        {"id": "a1", "text": "\n\n".join([PARAGRAPHS[0], "  ".join(HELD_OUT.split(" ")), "Read more", PARAGRAPHS[1]])},
        {"id": "a2", "text": "\n\n".join([PARAGRAPHS[1], *PARAGRAPHS[2:]])},  # a syndicated repeat of a1's last
    ]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(article) + "\n" for article in articles)
    return path


def test_archive_paragraphs_skip_held_out_text_duplicates_and_crumbs(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "archive.jsonl.gz")
    got = archive_paragraphs([archive], exclude_texts=[HELD_OUT])
    # the dev/test paragraph is recognised despite different whitespace; the repeat and "Read more" are dropped
    assert got == PARAGRAPHS


def test_masked_only_projection_gives_the_models_own_loss() -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    source = resolve_base_model("default")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForMaskedLM.from_pretrained(source).eval()
    torch.manual_seed(0)
    batch = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)([tokenizer(t) for t in PARAGRAPHS])
    with torch.no_grad():
        assert float(masked_lm_loss(model, dict(batch))) == pytest.approx(float(model(**batch).loss), rel=1e-5)


def test_domain_adapt_writes_an_encoder_other_stages_load(tmp_path: Path) -> None:
    from transformers import AutoModel

    out = tmp_path / "encoder"
    config = DomainConfig(epochs=1, batch_size=4, max_steps=3, head_warmup_steps=1, held_out=0.2, threads=1)
    metrics = domain_adapt(PARAGRAPHS * 2, "default", out, config)
    assert metrics["steps"] == 3 and metrics["held_out_paragraphs"] == 2 and metrics["train_paragraphs"] == 10
    assert metrics["held_out_mlm_loss_after"] < metrics["held_out_mlm_loss_before"]  # the fresh head learns fast
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    adapted = AutoModel.from_pretrained(out)
    base = AutoModel.from_pretrained(resolve_base_model("default"))
    names = dict(base.named_parameters())
    changed = [n for n, p in adapted.named_parameters() if not torch.equal(p, names[n])]
    assert changed and all(n in names for n, _ in adapted.named_parameters())  # every encoder weight loaded
    assert resolve_base_model(str(out)) == str(out)


def test_command_adapts_from_its_config_and_logs_an_mlflow_run(tiny_models, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from frontwire.cli import app

    archive = write_archive(tmp_path / "archive.jsonl.gz")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "encoder"
    sets = ["training.max_steps=2", "training.batch_size=4", "training.held_out=0.2", "training.threads=1",
            f"output.dir={out}", f"mlflow.tracking_uri={uri}"]
    result = CliRunner().invoke(
        app, ["train", "domain-adapt", str(archive), "--data", str(tiny_models.data_dir),
              *[arg for item in sets for arg in ("--set", item)]], catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["steps"] == 2 and Path(summary["model_dir"]) == out and (out / "model.safetensors").is_file()
    run = MlflowClient(tracking_uri=uri).get_run(summary["run_id"])
    assert run.data.params["training.max_steps"] == "2"
    assert run.data.metrics["held_out_mlm_loss_after"] == summary["held_out_mlm_loss_after"]
    bad = CliRunner().invoke(app, ["train", "domain-adapt", str(archive), "--set", "training.epochs=0"])
    assert bad.exit_code != 0 and "epochs" in str(bad.exception or bad.output)
