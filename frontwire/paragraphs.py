"""Split documents into paragraphs with character offsets: plain text (blank-line separated) and HTML.

HTML is parsed with lxml into block-level paragraphs. Page chrome (navigation, newsletter prompts, credits)
is deliberately kept: it is the `boilerplate` class, and the model, not a heuristic, decides what is chrome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html
from lxml import etree

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SPACES = re.compile(r"\s+")

# Elements that start a new paragraph; everything else is inline text of the current paragraph.
BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "caption",
        "option",
        "select",
        "button",
        "br",
    ]
)
SKIPPED_TAGS = frozenset(
    ["script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas", "math"]
)
_UTF8_PARSER = lxml.html.HTMLParser(encoding="utf-8")


@dataclass(frozen=True)
class Paragraph:
    index: int
    start: int
    end: int
    text: str


def split_text(text: str) -> list[Paragraph]:
    """Paragraphs separated by blank lines; offsets index `text`, surrounding whitespace excluded."""
    paragraphs: list[Paragraph] = []
    position = 0
    for match in [*_BLANK_LINE.finditer(text), None]:
        chunk_end = match.start() if match else len(text)
        chunk = text[position:chunk_end]
        stripped = chunk.strip()
        if stripped:
            start = position + (len(chunk) - len(chunk.lstrip()))
            paragraphs.append(Paragraph(len(paragraphs), start, start + len(stripped), stripped))
        if match:
            position = match.end()
    return paragraphs


def html_to_text(html: str | bytes) -> str:
    """Block-level paragraphs of an HTML page joined by blank lines (so `split_text` recovers them)."""
    if not html.strip():
        return ""
    root = _parse_html(html)
    blocks: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        line = _SPACES.sub(" ", "".join(buffer)).strip()
        if line:
            blocks.append(line)
        buffer.clear()

    def walk(element: etree._Element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        tag = tag.lower()
        if tag in SKIPPED_TAGS or not isinstance(element.tag, str):
            # comments / processing instructions carry no text, but their tail does
            if element.tail:
                buffer.append(element.tail)
            return
        is_block = tag in BLOCK_TAGS
        if is_block:
            flush()
        if element.text:
            buffer.append(element.text)
        for child in element:
            walk(child)
        if is_block:
            flush()
        if element.tail:
            buffer.append(element.tail)

    walk(root)
    flush()
    return "\n\n".join(blocks)


def _parse_html(html: str | bytes) -> etree._Element:
    """Parse without mojibake: libxml2 reads undeclared bytes as Latin-1, so UTF-8 is stated explicitly.

    A str is UTF-8 once encoded; bytes that decode as UTF-8 are UTF-8; any other bytes are left to lxml,
    which honours the page's own `<meta charset>`.
    """
    if isinstance(html, str):
        return lxml.html.document_fromstring(html.encode("utf-8"), parser=_UTF8_PARSER)
    try:
        html.decode("utf-8")
    except UnicodeDecodeError:
        return lxml.html.document_fromstring(html)
    return lxml.html.document_fromstring(html, parser=_UTF8_PARSER)


def looks_like_html(text: str) -> bool:
    head = text[:2048].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or bool(re.search(r"<(p|div|body|article)[\s>]", head))
