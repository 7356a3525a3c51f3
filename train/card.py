"""Model card (README.md in the model directory): data, metrics, intended use, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontwire.modeling import ModelMeta


def _table(rows: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, values in rows.items():
        cells = [f"{values[c]:.3f}" if isinstance(values.get(c), float) else str(values.get(c, "")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_model_card(model_dir: Path, meta: ModelMeta, extra: dict[str, Any] | None = None) -> None:
    what = "multi-label topic classifier" if meta.kind == "classifier" else "named-entity recogniser"
    dev = meta.metrics.get("dev", {})
    test = meta.metrics.get("test", {})
    per = "per_label" if meta.kind == "classifier" else "per_type"
    sections = [
        f"# {meta.name}\n",
        f"A frontwire {what} for English war-news paragraphs (Russia–Ukraine war, 2022–2024), label schema "
        f"`{meta.schema_.tag}`. Fine-tuned from `{meta.base_model}`; windows of {meta.max_length} tokens, "
        f"stride {meta.stride}.\n",
        "## Labels\n",
        "\n".join(
            f"- `{t.name}`: {t.description}"
            for t in (meta.schema_.topics if meta.kind == "classifier" else meta.schema_.entities)
        )
        + "\n",
        "## Data\n",
        f"- source: `{meta.dataset.get('source')}`\n- dataset fingerprint: `{meta.dataset.get('fingerprint')}`\n"
        f"- split sizes: train {meta.dataset.get('train_size')}, dev {meta.dataset.get('dev_size')}, "
        f"test {meta.dataset.get('test_size')} (grouped by article)\n",
        "## Metrics\n",
    ]
    for name, block in (("dev", dev), ("test", test)):
        if block.get(per):
            sections.append(f"### {name}\n\n" + _table(block[per], ("precision", "recall", "f1", "support")) + "\n")
            sections.append(f"micro-F1 {block['micro']['f1']:.3f}, macro-F1 {block['macro']['f1']:.3f}\n")
    if meta.thresholds:
        sections.append(
            "Decision thresholds (tuned per label on dev): "
            + ", ".join(f"`{k}` {v:.2f}" for k, v in meta.thresholds.items())
            + "\n"
        )
    if extra:
        sections.append("\n".join(f"- {k}: {v}" for k, v in extra.items()) + "\n")
    sections += [
        "## Intended use\n",
        "Routing and indexing of news paragraphs (topics), and entity extraction for search and analysis. "
        "Scores are model confidences, not calibrated probabilities; see `frontwire evaluate` for calibration.\n",
        "## Limits\n",
        "- English news prose of 2022–2024 about one war; other domains, languages and eras will degrade.\n"
        "- Trained on a few thousand paragraphs: rare labels and entity types have wide error bars.\n"
        "- Thresholds were tuned on the dev split; the test split gives the unbiased estimate.\n"
        "- Not for decisions about individuals; entity mentions are not verified facts.\n",
    ]
    (model_dir / "README.md").write_text("\n".join(sections), encoding="utf-8")
