"""The label schema (`configs/labels.yaml`): topics and entity types, validated once, read everywhere."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from frontwire.config import StrictModel, load_config

LABEL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"

# Entity highlight colours, chosen here once so that the Label Studio editor and the serve inspection page show
# a type in the same colour (stages cannot import each other). Distinct and readable; cycled if the schema grows.
ENTITY_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


class TopicLabel(StrictModel):
    name: str = Field(pattern=LABEL_NAME_PATTERN)
    description: str
    # An exclusive topic (boilerplate) is never predicted together with any other topic.
    exclusive: bool = False


class EntityType(StrictModel):
    name: str = Field(pattern=LABEL_NAME_PATTERN)
    description: str


class LabelSchema(StrictModel):
    name: str
    version: int = Field(ge=1)
    guidelines: str | None = None
    topics: list[TopicLabel] = Field(min_length=1)
    entities: list[EntityType] = Field(min_length=1)

    @field_validator("topics", "entities")
    @classmethod
    def _unique_names(cls, items: list[TopicLabel] | list[EntityType]) -> list:
        names = [item.name for item in items]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate names: {duplicates}")
        return items

    @model_validator(mode="after")
    def _bio_safe_entity_names(self) -> LabelSchema:
        for entity in self.entities:
            if entity.name in {"O"}:
                raise ValueError("entity type 'O' clashes with the BIO outside tag")
        return self

    @cached_property
    def topic_names(self) -> list[str]:
        return [t.name for t in self.topics]

    @cached_property
    def entity_names(self) -> list[str]:
        return [e.name for e in self.entities]

    @cached_property
    def entity_colours(self) -> dict[str, str]:
        """Highlight colour per entity type, by schema order (derived, so model dirs do not store it)."""
        return {name: ENTITY_PALETTE[i % len(ENTITY_PALETTE)] for i, name in enumerate(self.entity_names)}

    @cached_property
    def exclusive_topics(self) -> list[str]:
        return [t.name for t in self.topics if t.exclusive]

    @cached_property
    def bio_tags(self) -> list[str]:
        """Token tags for NER, index 0 is `O`; order is fixed by the schema."""
        return ["O"] + [f"{prefix}-{name}" for name in self.entity_names for prefix in ("B", "I")]

    @property
    def tag(self) -> str:
        """A versioned name, recorded with every model (`frontwire-war-news@1`)."""
        return f"{self.name}@{self.version}"


def load_schema(path: Path | str | None = None) -> LabelSchema:
    """Load and validate the label schema (packaged `configs/labels.yaml` when no path is given)."""
    return load_config(LabelSchema, path, "labels.yaml")
