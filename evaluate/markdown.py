"""The Markdown summary (report.md): headline numbers with intervals, comparison, per-class table, top misses."""

from __future__ import annotations

from typing import Any

TOPIC_HEADLINES = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "exact_match")
ENTITY_HEADLINES = ("micro_f1", "macro_f1", "micro_precision", "micro_recall")


def headline_names(payload: dict[str, Any]) -> tuple[str, ...]:
    return TOPIC_HEADLINES if payload["kind"] == "classifier" else ENTITY_HEADLINES


def fmt_interval(interval: dict[str, float] | None) -> str:
    if not interval:
        return "n/a"
    return f"{interval['value']:.4f} [{interval['low']:.4f}, {interval['high']:.4f}]"


def _cell(value: Any) -> str:
    """Markdown table cells: a pipe or a newline in data text would break the table."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(payload: dict[str, Any], examples: int = 10) -> str:
    data, sides = payload["data"], payload["models"]
    lines = [
        f"# frontwire evaluation: {payload['kind']}",
        "",
        f"- data: `{data['source']}` ({data['format']}), split `{data['split']}`, {data['records']} records, "
        f"fingerprint `{data['fingerprint']}`",
        f"- input errors: {data['input_errors']}, warnings: {data['input_warnings']} (`input_errors.jsonl`)",
        f"- bootstrap: {payload['bootstrap']['n_resamples']} paragraph-level resamples, seed "
        f"{payload['bootstrap']['seed']}, 95% percentile intervals",
        "",
        "## Headline metrics",
        "",
        "| metric | " + " | ".join(f"{s.upper()}: {_cell(r['model']['name'])}" for s, r in sides.items()) + " |",
        "|---|" + "---|" * len(sides),
    ]
    for name in headline_names(payload):
        lines.append(
            f"| {name} | "
            + " | ".join(fmt_interval(r["confidence_intervals"].get(name)) for r in sides.values())
            + " |"
        )
    if payload.get("comparison"):
        lines += [
            "",
            "## B − A (paired bootstrap)",
            "",
            "| metric | A | B | B − A | 95% CI | P(B > A) |",
            "|---|---|---|---|---|---|",
        ]
        for name, c in payload["comparison"]["paired_bootstrap"].items():
            lines.append(
                f"| {name} | {c['a']:.4f} | {c['b']:.4f} | {c['value']:+.4f} | "
                f"[{c['low']:+.4f}, {c['high']:+.4f}] | {c['prob_b_better']:.3f} |"
            )
    for side, result in sides.items():
        lines += [
            "",
            f"## {side.upper()}: {_cell(result['model']['name'])}",
            "",
            f"`{_cell(result['model']['spec'])}`: {result['timing']['paragraphs']} paragraphs predicted in "
            f"{result['timing']['predict_seconds']:.1f} s",
            "",
        ]
        group = result["metrics"].get("per_label" if payload["kind"] == "classifier" else "per_type", {})
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {_cell(k)} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
            for k, v in group.items()
        ]
        if payload["kind"] == "ner":
            counts = result["error_breakdown"]["counts"]
            lines += [
                "",
                "| " + " | ".join(counts) + " |",
                "|" + "---|" * len(counts),
                "| " + " | ".join(str(v) for v in counts.values()) + " |",
            ]
        else:
            lines += [
                "",
                "ECE (10 bins): "
                + ", ".join(f"{k} {v['ece']:.4f}" for k, v in result["calibration"]["per_label"].items()),
            ]
        lines += [
            "",
            f"### Worst misses (top {min(examples, len(result['worst_misses']))}; all in report.html)",
            "",
            "| id | confidence | errors | detail | text |",
            "|---|---|---|---|---|",
        ]
        for row in result["worst_misses"][:examples]:
            if payload["kind"] == "classifier":
                detail = f"gold {row['gold']} → predicted {row['predicted']}"
            else:
                detail = ", ".join(f"{k} {v}" for k, v in row["error_kinds"].items())
            confidence = "—" if row["confidence"] is None else f"{row['confidence']:.3f}"
            text = row["text"] if len(row["text"]) <= 160 else row["text"][:157] + "…"
            lines.append(f"| {_cell(row['id'])} | {confidence} | {row['errors']} | {_cell(detail)} | {_cell(text)} |")
    return "\n".join(lines) + "\n"
