"""Where an exported span really is in the task text: Label Studio counts offsets in UTF-16 code units, some
exports carry Python indices, and an edited text can shift a span; each fix is reported through `note`."""

from __future__ import annotations

from frontwire.labeling.settings import LabelingConfig
from frontwire.offsets import has_astral, utf16_span_to_py


def locate_span(
    text: str, start: int, end: int, surface: str | None, config: LabelingConfig, note
) -> tuple[int, int] | None:
    """Python offsets of the span the export means, or None; `0 <= start <= end` is checked by the caller."""
    astral = has_astral(text)
    # Offsets past the end are not clamped into a shorter span: only a nearby surface match can place them.
    units = len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF) if astral else len(text)
    py_start, py_end = utf16_span_to_py(text, start, end) if astral else (start, end)
    if end <= units and (surface is None or text[py_start:py_end] == surface):
        located = (py_start, py_end)
    elif surface is None:
        return None
    elif end <= len(text) and text[start:end] == surface:
        note("python_offsets", f"span {start}-{end} {surface!r} used Python indices, not UTF-16 units")
        located = (start, end)
    else:
        located = relocate(text, surface, py_start, config.relocate_window)
        if located is None:
            return None
        note("relocated_span", f"span {start}-{end} {surface!r} moved to {located[0]}-{located[1]}")
    s, e = located
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if (s, e) != located:
        note("trimmed_span", f"span {located[0]}-{located[1]} trimmed to {s}-{e} (surrounding whitespace)")
    return (s, e) if s < e else None


def relocate(text: str, surface: str, near: int, window: int) -> tuple[int, int] | None:
    if not surface:
        return None
    best: int | None = None
    position = text.find(surface)
    while position != -1:
        if abs(position - near) <= window and (best is None or abs(position - near) < abs(best - near)):
            best = position
        position = text.find(surface, position + 1)
    return None if best is None else (best, best + len(surface))
