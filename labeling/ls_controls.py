"""Which controls of a Label Studio labeling config carry frontwire's topics and entities.

Label Studio sends the project's labeling config with every ML backend call. A project may have renamed its
controls (`<Choices name="topic">`), re-cased its labels (`Strike`), dropped some or added others; results must
name the project's own controls and values, so they are found here rather than taken from configs/labeling.yaml.
A control is matched by the values it offers (the `Choice`/`Label` values overlapping the schema's names, case
ignored); its `toName` must point at a `<Text>`/`<HyperText>` object, whose `value="$key"` names the task field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

TEXT_OBJECTS = ("Text", "HyperText", "Paragraphs")


class LabelConfigError(ValueError):
    """The labeling config is not XML, or offers no control frontwire can fill."""


@dataclass(frozen=True)
class Control:
    name: str  # from_name in results
    to_name: str
    data_key: str  # task.data key of the object the control labels
    values: dict[str, str] = field(default_factory=dict)  # frontwire label -> the project's value
    single: bool = False  # <Choices choice="single">: at most one value per result


@dataclass(frozen=True)
class Controls:
    topics: Control | None
    entities: Control | None

    @property
    def data_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.data_key for c in (self.topics, self.entities) if c is not None))


def _parse(label_config: str) -> etree._Element:
    # no entities, no network, bounded depth: the config comes over HTTP
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        return etree.fromstring(label_config.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError) as err:
        raise LabelConfigError(f"label_config is not valid XML: {err}") from err


def _best(candidates: list[tuple[etree._Element, dict[str, str]]]) -> tuple[etree._Element, dict[str, str]] | None:
    matched = [c for c in candidates if c[1]]
    return max(matched, key=lambda c: len(c[1])) if matched else None


def _values(control: etree._Element, child_tag: str, wanted: Sequence[str]) -> dict[str, str]:
    by_lower = {name.lower(): name for name in wanted}
    values: dict[str, str] = {}
    for child in control.iter(child_tag):
        # a result carries the alias when the project gave one, else the value
        value = child.get("value")
        if value is None:
            continue
        ours = by_lower.get(value.strip().lower())
        if ours is not None and ours not in values:
            values[ours] = child.get("alias") or value
    return values


def find_controls(label_config: str, topics: Sequence[str], entity_types: Sequence[str]) -> Controls:
    """The Choices control for `topics` and the Labels control for `entity_types` (each None when absent)."""
    root = _parse(label_config)
    objects = {el.get("name"): el for el in root.iter(*TEXT_OBJECTS) if el.get("name")}

    def control(tag: str, child: str, wanted: Sequence[str]) -> Control | None:
        if not wanted:
            return None
        candidates = [
            (el, _values(el, child, wanted)) for el in root.iter(tag) if el.get("name") and el.get("toName") in objects
        ]
        best = _best(candidates)
        if best is None:
            return None
        element, values = best
        target = objects[element.get("toName")]
        key = (target.get("value") or "").strip()
        if not key.startswith("$") or len(key) < 2:
            raise LabelConfigError(f'<{target.tag} name={target.get("name")!r}> has no value="$field"')
        return Control(
            element.get("name"),
            target.get("name"),
            key[1:],
            values,
            single=(element.get("choice") or "single") == "single" if tag == "Choices" else False,
        )

    found = Controls(control("Choices", "Choice", topics), control("Labels", "Label", entity_types))
    if found.topics is None and found.entities is None:
        raise LabelConfigError(
            f"label_config has no <Choices> offering any of {list(topics)} and no <Labels> offering any of "
            f"{list(entity_types)} on a text object: nothing frontwire predicts fits this project"
        )
    return found
