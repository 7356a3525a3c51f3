"""The error-analysis page: one self-contained HTML file (inline CSS, JS and PNGs; no external URL).

Rendered from metrics.json's payload alone, so the page never shows a number the JSON does not hold. Every
piece of data text goes through `html.escape`. Tables render server-side; the script only sorts them (click
a header; `#sort=<key>-<asc|desc>` in the address sorts on load) and marks the page ready.
"""

from __future__ import annotations

import base64
import html
from itertools import pairwise
from pathlib import Path
from typing import Any

from frontwire.evaluate.markdown import fmt_interval, headline_names

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}
th{background:#f3f3f3}table.sortable th{cursor:pointer}table.sortable th:hover{background:#e4e4e4}
td.num{text-align:right;font-variant-numeric:tabular-nums}.text{max-width:620px}
.g{border-bottom:3px solid #1a7f37}.p{background:#ffe08a}.tag{font-size:70%;padding:0 2px;margin-left:1px}
sub.tag.g{color:#1a7f37;border:0}sub.tag.p{color:#8a5a00}.chip{display:inline-block;padding:0 5px;margin:1px;
border-radius:8px;font-size:85%}.ok{background:#dcefdc}.miss{background:#f8d0d0}.fp{background:#ffe08a}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}.meta{color:#555}
"""

SCRIPT = """
(function(){
  function key(cell){var v=cell.getAttribute('data-sort');return v===null?cell.textContent:v;}
  function sortBy(table,index,descending){
    var th=table.tHead.rows[0].cells[index],numeric=th.getAttribute('data-type')==='number';
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a.cells[index]),y=key(b.cells[index]);
      var c=numeric?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);return descending?-c:c;});
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',descending?'descending':'ascending');
  }
  var tables=document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables,function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){sortBy(table,i,th.getAttribute('aria-sort')!=='descending');});
    });
  });
  var m=/sort=([a-z_]+)-(asc|desc)/.exec(location.hash);
  if(m){Array.prototype.forEach.call(tables,function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      if(th.getAttribute('data-key')===m[1]){sortBy(table,i,m[2]==='desc');}});});}
  var rows=document.querySelectorAll('table.sortable tbody tr').length;
  document.body.setAttribute('data-ready','1');document.body.setAttribute('data-rows',String(rows));
})();
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(payload: dict[str, Any], out_dir: Path) -> str:
    data = payload["data"]
    parts = [
        f"<h1>frontwire evaluation: {esc(payload['kind'])}</h1>",
        f"<p class='meta'>data {esc(data['source'])} · format {esc(data['format'])} · split {esc(data['split'])}"
        f" · {data['records']} records · {data['input_errors']} input errors, {data['input_warnings']} warnings"
        f" (input_errors.jsonl) · {payload['bootstrap']['n_resamples']} bootstrap resamples, seed "
        f"{payload['bootstrap']['seed']}</p>",
        _headline(payload),
    ]
    if payload.get("comparison"):
        parts.append(_comparison(payload))
    for side, result in payload["models"].items():
        parts.append(_side(side, result, payload["kind"], out_dir))
    body = "\n".join(parts)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>frontwire evaluation</title>"
        f"<style>{CSS}</style></head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _table(header: list[str], rows: list[list[str]], attrs: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _headline(payload: dict[str, Any]) -> str:
    sides = payload["models"]
    rows = [
        [esc(name)] + [esc(fmt_interval(r["confidence_intervals"].get(name))) for r in sides.values()]
        for name in headline_names(payload)
    ]
    header = ["metric (95% CI)"] + [f"{side.upper()}: {r['model']['name']}" for side, r in sides.items()]
    return "<h2>Headline metrics</h2>" + _table(header, rows)


def _comparison(payload: dict[str, Any]) -> str:
    rows = [
        [
            esc(name),
            f"{c['a']:.4f}",
            f"{c['b']:.4f}",
            f"{c['value']:+.4f}",
            f"[{c['low']:+.4f}, {c['high']:+.4f}]",
            f"{c['prob_b_better']:.3f}",
        ]
        for name, c in payload["comparison"]["paired_bootstrap"].items()
    ]
    return "<h2>Comparison: B − A (paired bootstrap)</h2>" + _table(
        ["metric", "A", "B", "B − A", "95% CI", "P(B > A)"], rows
    )


def _side(side: str, result: dict[str, Any], kind: str, out_dir: Path) -> str:
    metrics = result["metrics"]
    group = metrics.get("per_label" if kind == "classifier" else "per_type", {})
    per_class = _table(
        ["class", "precision", "recall", "F1", "support"],
        [
            [esc(name), *(f"{v[k]:.4f}" for k in ("precision", "recall", "f1")), str(v["support"])]
            for name, v in group.items()
        ],
    )
    parts = [
        f"<section id='side-{esc(side)}'><h2>{esc(side.upper())}: {esc(result['model']['name'])}</h2>",
        f"<p class='meta'>{esc(result['model']['spec'])} · {result['timing']['paragraphs']} paragraphs in "
        f"{result['timing']['predict_seconds']:.1f} s</p>",
        per_class,
    ]
    if kind == "ner":
        counts = result["error_breakdown"]["counts"]
        parts.append(_table(list(counts), [[str(v) for v in counts.values()]]))
    else:
        ece = result["calibration"]["per_label"]
        parts.append(
            _table(
                ["label", "saved threshold", "ECE (10 bins)"],
                [[esc(k), f"{result['thresholds'][k]:.2f}", f"{v['ece']:.4f}"] for k, v in ece.items()],
            )
        )
    for name, file in result["plots"].items():
        encoded = base64.b64encode((out_dir / "plots" / file).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{encoded}'></figure>")
    parts.append(f"<h3>Worst misses ({len(result['worst_misses'])})</h3>")
    parts.append(
        "<p>Text: <span class='g'>gold span</span> · <span class='p'>predicted span</span> · "
        "labels: <span class='chip ok'>right</span><span class='chip miss'>missed</span>"
        "<span class='chip fp'>wrongly predicted</span>. Click a header to sort.</p>"
    )
    parts.append(_misses(side, result["worst_misses"], kind))
    return "\n".join(parts) + "</section>"


def _misses(side: str, rows: list[dict[str, Any]], kind: str) -> str:
    gold_head, pred_head = ("gold", "predicted") if kind == "classifier" else ("errors by kind", "predicted spans")
    head = (
        "<thead><tr><th data-type='number' data-key='rank'>#</th><th data-key='id'>id</th>"
        "<th data-type='number' data-key='confidence'>confidence</th><th data-type='number' data-key='errors'>"
        f"errors</th><th>{gold_head}</th><th>{pred_head}</th><th>text</th></tr></thead>"
    )
    body = []
    for rank, row in enumerate(rows, start=1):
        confidence = row["confidence"]
        shown = "—" if confidence is None else f"{confidence:.3f}"
        if kind == "classifier":
            gold = (
                "".join(
                    _chip(label, "ok" if label in row["predicted"] else "miss", row["scores"][label])
                    for label in row["gold"]
                )
                or "<i>none</i>"
            )
            predicted = (
                "".join(
                    _chip(label, "ok" if label in row["gold"] else "fp", row["scores"][label])
                    for label in row["predicted"]
                )
                or "<i>none</i>"
            )
            text = esc(row["text"])
        else:
            gold = esc(", ".join(f"{k} {v}" for k, v in row["error_kinds"].items()))
            predicted = str(len(row["predicted"]))
            text = highlight(row["text"], row["gold"], row["predicted"])
        body.append(
            f"<tr><td class='num' data-sort='{rank}'>{rank}</td><td>{esc(row['id'])}</td>"
            f"<td class='num' data-sort='{-1 if confidence is None else confidence}'>{shown}</td>"
            f"<td class='num' data-sort='{row['errors']}'>{row['errors']}</td><td>{gold}</td>"
            f"<td>{predicted}</td><td class='text'>{text}</td></tr>"
        )
    return f"<table class='sortable misses' id='misses-{esc(side)}'>{head}<tbody>{''.join(body)}</tbody></table>"


def _chip(label: str, style: str, score: float) -> str:
    return f"<span class='chip {style}' title='score {score:.3f}'>{esc(label)} {score:.2f}</span>"


def highlight(text: str, gold: list[dict[str, Any]], predicted: list[dict[str, Any]]) -> str:
    """Text with gold spans underlined and predicted spans shaded (both where they overlap), each span's
    label after its last character."""
    cuts = sorted({0, len(text), *(s[k] for s in (*gold, *predicted) for k in ("start", "end"))})
    out = []
    for start, end in pairwise(cuts):
        in_gold = [s for s in gold if s["start"] <= start and end <= s["end"]]
        in_pred = [s for s in predicted if s["start"] <= start and end <= s["end"]]
        segment = esc(text[start:end])
        classes = " ".join(c for c, hit in (("g", in_gold), ("p", in_pred)) if hit)
        if classes:
            title = "; ".join(
                [
                    *(f"gold {s['label']}" for s in in_gold),
                    *(f"predicted {s['label']} {s.get('score', 0):.2f}" for s in in_pred),
                ]
            )
            segment = f"<span class='{classes}' title='{esc(title)}'>{segment}</span>"
        out.append(segment)
        out.extend(f"<sub class='tag g'>{esc(s['label'])}</sub>" for s in gold if s["end"] == end)
        out.extend(f"<sub class='tag p'>{esc(s['label'])}</sub>" for s in predicted if s["end"] == end)
    return "".join(out)
