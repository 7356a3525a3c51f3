"""Generate the Label Studio labeling config (XML) from the label schema."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from frontwire.labeling.settings import LabelingConfig
from frontwire.schema import LabelSchema


def label_studio_config(schema: LabelSchema, config: LabelingConfig) -> str:
    """One <Text>, a <Labels> control for entity spans and a multi-choice <Choices> control for topics."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value=f"{schema.name} v{schema.version}: topics (any number) and entities")
    labels = ET.SubElement(view, "Labels", name=config.entities_control, toName=config.text_field)
    for entity in schema.entities:
        ET.SubElement(
            labels, "Label", value=entity.name, background=schema.entity_colours[entity.name], hint=entity.description
        )
    ET.SubElement(view, "Text", name=config.text_field, value=f"${config.text_field}")
    choices = ET.SubElement(
        view,
        "Choices",
        name=config.topics_control,
        toName=config.text_field,
        choice="multiple",
        showInLine="true",
    )
    for topic in schema.topics:
        ET.SubElement(choices, "Choice", value=topic.name, hint=topic.description)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")
