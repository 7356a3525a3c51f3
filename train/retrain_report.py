"""What `frontwire retrain` tells its user: the data delta since the last import, headline metrics, warnings
where dev and test disagree, and the one-screen summary."""

from __future__ import annotations

import json
from typing import Any

KINDS = ("classifier", "ner")
HEADLINE = {"classifier": ("macro_f1", "micro_f1"), "ner": ("micro_f1", "macro_f1")}
SHOWN = {"macro_f1": "macro-F1", "micro_f1": "micro-F1", "micro_precision": "micro-P", "micro_recall": "micro-R"}


def data_delta(
    previous: list, current: list, previous_groups: dict[str, str], assignment: dict[str, str], group_by: str
) -> dict[str, Any]:
    """What this import changed: records added/removed/relabelled, and where new articles went."""
    from frontwire.splits import SPLITS, group_key

    before = {r.id: r for r in previous}
    after = {r.id: r for r in current}

    def labels_of(record) -> tuple:
        return tuple(record.labels), tuple((s.start, s.end, s.label) for s in record.entities)

    relabelled = sorted(i for i in before.keys() & after.keys() if labels_of(before[i]) != labels_of(after[i]))
    new_groups = sorted({group_key(r, group_by) for r in current} - set(previous_groups))
    added_records = [after[i] for i in sorted(after.keys() - before.keys())]
    return {
        "records_before": len(before),
        "records_after": len(after),
        "added": len(added_records),
        "removed": len(before.keys() - after.keys()),
        "relabelled": len(relabelled),
        "added_by_split": {
            s: sum(1 for r in added_records if assignment.get(group_key(r, group_by)) == s) for s in SPLITS
        },
        "new_groups": len(new_groups),
        "new_groups_by_split": {s: sum(1 for g in new_groups if assignment.get(g) == s) for s in SPLITS},
        "kept_groups": sum(1 for g, s in previous_groups.items() if assignment.get(g) == s),
        "moved_groups": sum(1 for g, s in previous_groups.items() if g in assignment and assignment[g] != s),
        "examples_added": [r.id for r in added_records[:5]],
    }


def headline(kind: str, block: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in HEADLINE[kind]:
        average = key.split("_")[0]
        if average in block:
            out[key] = round(float(block[average]["f1"]), 4)
    return out


def disagreement(kind: str, entry: dict[str, Any]) -> str | None:
    """A promotion (decided on dev) whose paired test interval lies wholly below zero, or the reverse."""
    difference = entry["test_comparison"].get("difference", {}).get(HEADLINE[kind][0])
    if not difference:
        return None
    promoted = bool(entry["decision"].get("promoted"))
    metric = HEADLINE[kind][0]
    if promoted and difference["high"] < 0:
        return f"promoted on dev, but test {metric} is lower with 95 % confidence ({difference['value']:+.4f})"
    if not promoted and entry["decision"].get("decision") == "refused" and difference["low"] > 0:
        return f"refused on dev, but test {metric} is higher with 95 % confidence ({difference['value']:+.4f})"
    return None


def _fmt(interval: dict[str, float] | None) -> str:
    if not interval:
        return "–".center(21)
    return f"{interval['value']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items())


def render_summary(summary: dict[str, Any]) -> str:
    data = summary["data"]
    lines = [
        f"frontwire retrain  {summary['started_at']}",
        f"data    {data['source']} -> {data['records_dir']}",
        f"        {data['tasks']} tasks -> {data['records']} records ({data['errors']} rejected "
        f"{json.dumps(data['errors_by_reason'])}), fingerprint {data['fingerprint']}",
        f"        since the last import: +{data['added']} records, -{data['removed']}, "
        f"{data['relabelled']} relabelled; added by split {_pairs(data['added_by_split'])}",
        f"        articles: {data['new_groups']} new ({_pairs(data['new_groups_by_split'])}), {data['kept_groups']} "
        f"kept their split, {data['moved_groups']} moved; splits {_pairs(data['splits'])}",
    ]
    if summary.get("skipped"):
        lines.append(f"skipped: {summary['skipped']}")
        return "\n".join(lines)
    test = summary.get("test", {})
    for kind in KINDS:
        entry = summary.get(kind)
        if not entry:
            continue
        comparison = entry["test_comparison"]
        champion = comparison.get("champion")
        lines.append("")
        lines.append(
            f"{kind:<10} candidate {entry['registered_model']} v{entry['version']} (run {entry['run_id'][:8]})"
            f" vs {champion['model'] if champion else 'no champion yet'}"
        )
        lines.append(
            f"           test split: {test.get('paragraphs', 0)} paragraphs, 95 % bootstrap "
            f"({comparison.get('n_resamples')} paired resamples)"
        )
        lines.append(
            f"           {'metric':<10} {'champion (before)':<24} {'candidate (after)':<24} "
            f"{'difference':<24} P(better)"
        )
        for metric in (*HEADLINE[kind], "micro_precision", "micro_recall"):
            new = comparison.get("candidate", {}).get("intervals", {}).get(metric)
            old = champion["intervals"].get(metric) if champion else None
            diff = comparison.get("difference", {}).get(metric)
            delta = f"{diff['value']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]" if diff else "–".center(21)
            better = f"{diff['prob_b_better']:.2f}" if diff else "–"
            lines.append(f"           {SHOWN[metric]:<10} {_fmt(old):<24} {_fmt(new):<24} {delta:<24} {better}")
        decision = entry["decision"]
        lines.append(f"           decision: {decision['decision'].upper()} — {decision['reason']}")
        if entry.get("warning"):
            lines.append(f"           warning: {entry['warning']}")
    return "\n".join(lines)
