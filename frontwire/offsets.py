"""Conversions between Python str indices and the UTF-16 code units Label Studio's editor counts.

Browsers index strings in UTF-16, so every character outside the Basic Multilingual Plane (emoji, flags)
counts twice in a Label Studio span offset but once in a Python index.
"""

from __future__ import annotations


def has_astral(text: str) -> bool:
    return any(ord(ch) > 0xFFFF for ch in text)


def utf16_to_py_map(text: str) -> list[int]:
    """map[u] = Python index of UTF-16 unit u (len = utf16 length + 1). A unit inside a pair maps to its char."""
    mapping: list[int] = []
    for index, ch in enumerate(text):
        mapping.append(index)
        if ord(ch) > 0xFFFF:
            mapping.append(index)
    mapping.append(len(text))
    return mapping


def py_to_utf16_map(text: str) -> list[int]:
    """map[i] = UTF-16 unit offset of Python index i (len = len(text) + 1)."""
    mapping = [0] * (len(text) + 1)
    units = 0
    for index, ch in enumerate(text):
        mapping[index] = units
        units += 2 if ord(ch) > 0xFFFF else 1
    mapping[len(text)] = units
    return mapping


def utf16_span_to_py(text: str, start: int, end: int) -> tuple[int, int]:
    if not has_astral(text):
        return start, end
    mapping = utf16_to_py_map(text)
    last = len(mapping) - 1
    return mapping[min(start, last)], mapping[min(end, last)]


def py_span_to_utf16(text: str, start: int, end: int) -> tuple[int, int]:
    if not has_astral(text):
        return start, end
    mapping = py_to_utf16_map(text)
    return mapping[start], mapping[end]
