"""The label schema (configs/labels.yaml) and the YAML config machinery.

The schema is the single source of truth: these tests read it through `load_schema()` and never restate
its labels, and they prove that editing it (a temporary copy with one more topic) changes the generated
Label Studio config, record validation and import with no other edit.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from frontwire.cli import app
from frontwire.config import (
    ConfigError,
    apply_overrides,
    flatten,
    load_config,
    packaged_config_path,
    read_yaml,
    validate_config,
)
from frontwire.labeling.ls_config import label_studio_config
from frontwire.labeling.ls_export import convert_export
from frontwire.labeling.settings import LabelingConfig, load_labeling_config
from frontwire.records import EntitySpan, Record
from frontwire.schema import LabelSchema, load_schema

NEW_TOPIC = "humanitarian"


@pytest.fixture(scope="module")
def schema() -> LabelSchema:
    return load_schema()


@pytest.fixture(scope="module")
def labeling() -> LabelingConfig:
    return load_labeling_config()


def schema_data() -> dict[str, Any]:
    """The packaged labels.yaml as plain data, to derive broken or edited copies from."""
    return yaml.safe_load(packaged_config_path("labels.yaml").read_text(encoding="utf-8"))


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def parse_config(xml: str, labeling: LabelingConfig) -> dict[str, Any]:
    root = ET.fromstring(xml)
    assert root.tag == "View"
    texts = root.findall("Text")
    assert len(texts) == 1, "exactly one <Text>"
    labels = root.findall("Labels")
    choices = root.findall("Choices")
    assert len(labels) == 1 and len(choices) == 1
    return {
        "text": texts[0],
        "labels": labels[0],
        "choices": choices[0],
        "entity_values": [el.get("value") for el in labels[0].findall("Label")],
        "topic_values": [el.get("value") for el in choices[0].findall("Choice")],
    }


# --- the packaged schema ---


def test_packaged_schema_is_valid_and_consistent(schema: LabelSchema) -> None:
    assert schema.topic_names and schema.entity_names
    assert len(set(schema.topic_names)) == len(schema.topic_names)
    assert len(set(schema.entity_names)) == len(schema.entity_names)
    assert all(t.description.strip() for t in schema.topics)
    assert all(e.description.strip() for e in schema.entities)
    # the exclusive topics are a proper subset: a record can still carry several non-exclusive topics
    assert set(schema.exclusive_topics) < set(schema.topic_names)
    assert schema.bio_tags[0] == "O"
    assert schema.bio_tags[1:] == [f"{p}-{e}" for e in schema.entity_names for p in ("B", "I")]
    assert schema.tag == f"{schema.name}@{schema.version}"


# --- validation errors name the field ---


@pytest.mark.parametrize("section", ["topics", "entities"])
def test_duplicate_names_are_rejected(tmp_path: Path, section: str) -> None:
    data = schema_data()
    duplicate = dict(data[section][0])
    data[section].append(duplicate)
    path = write_yaml(tmp_path / "labels.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_schema(path)
    message = str(err.value)
    assert section in message
    assert "duplicate" in message
    assert duplicate["name"] in message
    assert str(path) in message


def test_bad_yaml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("name: x\ntopics: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_schema(path)
    assert str(path) in str(err.value)


def test_top_level_list_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        read_yaml(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_schema(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(topcis=d["topics"]), "topcis"),  # a typo is an error, not ignored
        (lambda d: d["topics"][0].pop("description"), "topics.0.description"),
        (lambda d: d["topics"][1].update(name="bad label"), "topics.1.name"),
        (lambda d: d["entities"][0].update(colour="red"), "entities.0.colour"),
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.update(topics=[]), "topics"),
        (lambda d: d["topics"][0].update(exclusive="sometimes"), "topics.0.exclusive"),
    ],
)
def test_invalid_schema_names_the_field(tmp_path: Path, mutate, field: str) -> None:
    data = schema_data()
    mutate(data)
    path = write_yaml(tmp_path / "labels.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_schema(path)
    assert f"{field}:" in str(err.value)


def test_entity_named_like_the_bio_outside_tag_is_rejected(tmp_path: Path) -> None:
    data = schema_data()
    data["entities"].append({"name": "O", "description": "clashes with the outside tag"})
    with pytest.raises(ConfigError, match="BIO"):
        load_schema(write_yaml(tmp_path / "labels.yaml", data))


# --- overrides ---


def test_apply_overrides_sets_nested_values_parsed_as_yaml() -> None:
    data = {"split": {"seed": 13, "dev": 0.15}, "annotation_policy": "ground_truth"}
    result = apply_overrides(
        data,
        ["split.seed=99", "annotation_policy=latest", "new.section.items=[1, 2]", "flag=true", "empty="],
    )
    assert result == {
        "split": {"seed": 99, "dev": 0.15},
        "annotation_policy": "latest",
        "new": {"section": {"items": [1, 2]}},
        "flag": True,
        "empty": None,
    }
    # the input is not modified (nested sections included)
    assert data == {"split": {"seed": 13, "dev": 0.15}, "annotation_policy": "ground_truth"}


def test_apply_overrides_later_wins() -> None:
    assert apply_overrides({}, ["a=1", "a=2"]) == {"a": 2}


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("no_equals_sign", "section.key=value"),
        ("=5", "section.key=value"),
        ("split.seed.deeper=1", "'seed' is not a section"),
        ("split.seed=[1,", "not valid YAML"),
    ],
)
def test_bad_overrides_are_config_errors(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides({"split": {"seed": 13}}, [override])


def test_overrides_are_validated_with_the_model() -> None:
    config = load_labeling_config(None, ("split.seed=99", "annotation_policy=majority", "on_bad_span=drop_span"))
    assert config.split.seed == 99
    assert config.annotation_policy == "majority"
    assert config.on_bad_span == "drop_span"

    with pytest.raises(ConfigError, match="annotation_policy"):
        load_labeling_config(None, ("annotation_policy=whoever_shouts_loudest",))
    with pytest.raises(ConfigError, match="anotation_policy"):  # typo'd key named, not ignored
        load_labeling_config(None, ("anotation_policy=latest",))
    with pytest.raises(ConfigError, match="split"):
        load_labeling_config(None, ("split.dev=0.6", "split.test=0.5"))


def test_scientific_notation_override_reaches_a_float_field(tmp_path: Path) -> None:
    class Optim(BaseModel):
        lr: float

    class Root(BaseModel):
        optim: Optim

    path = write_yaml(tmp_path / "c.yaml", {"optim": {"lr": 0.1}})
    assert load_config(Root, path, "unused.yaml", ["optim.lr=3e-5"]).optim.lr == pytest.approx(3e-5)
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        validate_config(Root, {"optim": {"lr": "fast"}}, "inline")


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


# --- the generated Label Studio config ---


def test_generated_xml_has_every_topic_and_entity(schema: LabelSchema, labeling: LabelingConfig) -> None:
    parsed = parse_config(label_studio_config(schema, labeling), labeling)
    assert parsed["topic_values"] == schema.topic_names
    assert parsed["entity_values"] == schema.entity_names
    text, labels, choices = parsed["text"], parsed["labels"], parsed["choices"]
    assert text.get("name") == labeling.text_field
    assert text.get("value") == f"${labeling.text_field}"
    assert labels.get("name") == labeling.entities_control
    assert labels.get("toName") == labeling.text_field
    assert choices.get("name") == labeling.topics_control
    assert choices.get("toName") == labeling.text_field
    assert choices.get("choice") == "multiple"
    hints = {el.get("value"): el.get("hint") for el in choices.findall("Choice")}
    assert hints == {t.name: t.description for t in schema.topics}


def test_config_command_prints_the_same_xml(schema: LabelSchema, labeling: LabelingConfig, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["labeling", "config"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == label_studio_config(schema, labeling).strip()
    out = tmp_path / "ls.xml"
    result = runner.invoke(app, ["labeling", "config", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").strip() == label_studio_config(schema, labeling).strip()


# --- changing the schema changes everything downstream, with no other edit ---


@pytest.fixture
def edited_schema_path(tmp_path: Path) -> Path:
    """A copy of labels.yaml with one more topic and without its last entity type."""
    data = schema_data()
    data["topics"].append({"name": NEW_TOPIC, "description": "Aid, evacuations, refugees and shelters."})
    data["entities"].pop()
    data["version"] += 1
    return write_yaml(tmp_path / "labels.yaml", data)


def _task(choices: list[str], entity: str) -> dict[str, Any]:
    text = "Volunteers evacuated families from Sloviansk on Tuesday."
    start = text.index("Sloviansk")
    return {
        "id": 7,
        "data": {"text": text, "paragraph_id": "t-p000", "article_id": "t"},
        "annotations": [
            {
                "id": 70,
                "completed_by": 1,
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": "2024-03-01T10:00:00Z",
                "updated_at": "2024-03-01T10:00:00Z",
                "result": [
                    {
                        "id": "c1",
                        "from_name": "topics",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": choices},
                    },
                    {
                        "id": "e1",
                        "from_name": "entities",
                        "to_name": "text",
                        "type": "labels",
                        "value": {"start": start, "end": start + 9, "text": "Sloviansk", "labels": [entity]},
                    },
                ],
            }
        ],
        "predictions": [],
    }


def test_schema_edit_changes_xml_records_and_import(
    schema: LabelSchema, labeling: LabelingConfig, edited_schema_path: Path
) -> None:
    edited = load_schema(edited_schema_path)
    removed_entity = schema.entity_names[-1]
    kept_entity = schema.entity_names[0]
    assert edited.topic_names == [*schema.topic_names, NEW_TOPIC]
    assert edited.entity_names == schema.entity_names[:-1]
    assert edited.tag != schema.tag
    assert len(edited.bio_tags) == len(schema.bio_tags) - 2

    # Label Studio config
    before = parse_config(label_studio_config(schema, labeling), labeling)
    after = parse_config(label_studio_config(edited, labeling), labeling)
    assert NEW_TOPIC not in before["topic_values"]
    assert after["topic_values"] == edited.topic_names
    assert removed_entity in before["entity_values"]
    assert after["entity_values"] == edited.entity_names

    # CLI picks the schema up from --schema
    result = CliRunner().invoke(app, ["labeling", "config", "--schema", str(edited_schema_path)])
    assert result.exit_code == 0, result.output
    assert f'value="{NEW_TOPIC}"' in result.stdout
    assert f'value="{removed_entity}"' not in result.stdout

    # record validation
    record = Record(id="r1", text="Aid convoys reached the city.", labels=[NEW_TOPIC])
    with pytest.raises(ValueError, match="unknown topic"):
        record.check_schema(schema)
    record.check_schema(edited)
    with_removed = Record(
        id="r2",
        text="Aid convoys reached the city.",
        entities=[EntitySpan(start=0, end=3, label=removed_entity)],
    )
    with_removed.check_schema(schema)
    with pytest.raises(ValueError, match="unknown entity"):
        with_removed.check_schema(edited)

    # import of an export that uses the new topic
    task = _task([NEW_TOPIC], kept_entity)
    old = convert_export([task], schema, labeling)
    assert old.records == []
    assert [(i.task_id, i.reason) for i in old.issues] == [(7, "unknown_label")]
    new = convert_export([task], edited, labeling)
    assert [(r.id, r.labels, [s.label for s in r.entities]) for r in new.records] == [
        ("t-p000", [NEW_TOPIC], [kept_entity])
    ]
    # and the entity type it removed is now unknown
    gone = convert_export([_task([], removed_entity)], edited, labeling)
    assert gone.records == [] and [i.reason for i in gone.issues] == ["unknown_label"]
