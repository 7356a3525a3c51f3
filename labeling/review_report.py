"""The review page: one self-contained HTML file listing every suspect (no external URL, no build step).

Every piece of data text goes through `html.escape`; the script only sorts the tables (click a header).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from frontwire.labeling.review_suspects import SpanAnnotation, Suspect

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top}
th{background:#f3f3f3;cursor:pointer}th:hover{background:#e4e4e4}td.num{text-align:right}.text{max-width:560px}
.g{border-bottom:3px solid #1a7f37}.doubt{background:#ffe08a}.tag{font-size:70%;color:#1a7f37}.meta{color:#555}
pre{font-size:80%;white-space:pre-wrap;margin:0}
"""

SCRIPT = """
(function(){
  function key(c){var v=c.getAttribute('data-sort');return v===null?c.textContent:v;}
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){
        var desc=th.getAttribute('aria-sort')!=='descending',num=th.getAttribute('data-type')==='number';
        var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
          var c=num?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);return desc?-c:c;});
        rows.forEach(function(r){body.appendChild(r);});
        th.setAttribute('aria-sort',desc?'descending':'ascending');});});});
  document.body.setAttribute('data-ready','1');
})();
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def highlight(text: str, spans: Sequence[SpanAnnotation], doubt: tuple[int, int] | None) -> str:
    """Annotated spans underlined with their type; the range in doubt shaded."""
    cuts = sorted({0, len(text), *(x for s in spans for x in (s.start, s.end)), *(doubt or ())})
    out = []
    for start, end in pairwise(cuts):
        classes = []
        if any(s.start <= start and end <= s.end for s in spans):
            classes.append("g")
        if doubt and doubt[0] <= start and end <= doubt[1]:
            classes.append("doubt")
        segment = esc(text[start:end])
        out.append(f"<span class='{' '.join(classes)}'>{segment}</span>" if classes else segment)
        out.extend(f"<sub class='tag'>{esc(s.label)}</sub>" for s in spans if s.end == end)
    return "".join(out)


def _annotation(value: list[str] | SpanAnnotation | None) -> str:
    if value is None:
        return "<i>no span</i>"
    if isinstance(value, SpanAnnotation):
        return f"{esc(value.text)} <b>{esc(value.label)}</b>"
    return esc(", ".join(value)) if value else "<i>none</i>"


def _table(kind: str, suspects: Sequence[Suspect]) -> str:
    head = (
        "<thead><tr><th data-type='number'>#</th><th data-type='number'>score</th><th>error</th><th>record</th>"
        "<th data-type='number'>task</th><th>article</th><th>given</th><th>suggested</th><th>text</th>"
        "<th>evidence</th></tr></thead>"
    )
    rows = []
    for s in suspects:
        what = f"{esc(s.topic)}: " if s.topic else ""
        rows.append(
            f"<tr><td class='num'>{s.rank}</td><td class='num' data-sort='{s.score}'>{s.score:.3f}</td>"
            f"<td>{esc(s.error)}</td><td>{esc(s.record_id)}</td><td class='num'>{esc(s.task_id or '')}</td>"
            f"<td>{esc(s.article_id)}</td><td>{what}{_annotation(s.given)}</td><td>{what}{_annotation(s.suggested)}"
            f"</td><td class='text'>{highlight(s.text, s.entities, s.span)}</td>"
            f"<td><pre>{esc(json.dumps(s.evidence, ensure_ascii=False, indent=1))}</pre></td></tr>"
        )
    return f"<table class='sortable' id='suspects-{kind}'>{head}<tbody>{''.join(rows)}</tbody></table>"


def write_review_page(path: Path, suspects: Sequence[Suspect], summary: dict[str, Any]) -> None:
    parts = [
        "<h1>frontwire review: annotations the models doubt</h1>",
        f"<p class='meta'>{esc(json.dumps(summary, ensure_ascii=False))}</p>",
        "<p>Text: <span class='g'>annotated span</span> · <span class='doubt'>range in doubt</span>. "
        "Click a header to sort.</p>",
    ]
    for kind in ("topic", "entity"):
        group = [s for s in suspects if s.kind == kind]
        parts.append(f"<h2>{kind.capitalize()} suspects ({len(group)})</h2>")
        parts.append(_table(kind, group))
    body = "\n".join(parts)
    path.write_text(
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>frontwire review</title>"
        f"<style>{CSS}</style></head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n",
        encoding="utf-8",
    )
