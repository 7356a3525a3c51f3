"""Validated YAML configs with dotted command-line overrides (spaCy-style: one config drives the code).

Every stage has a pydantic model; `load_config` reads a YAML file (a packaged default when no path is
given), applies `section.key=value` overrides, and validates the result, so a typo in a key or a wrong
type fails before any work starts, naming the offending field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or override that does not validate."""


class StrictModel(BaseModel):
    """Base for all config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def packaged_config_path(name: str) -> Path:
    """Path of a default config shipped in `configs/` (e.g. "classifier.yaml")."""
    return Path(str(resources.files("frontwire.configs").joinpath(name)))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; values are parsed as YAML scalars/lists (`lr=3e-5`, `x=[1,2]`)."""
    result = _deep_copy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not of the form section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {override!r}: value is not valid YAML: {err}") from err
        parts = key.strip().split(".")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def validate_config(model: type[ModelT], data: Mapping[str, Any], source: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid config {source}: {problems}") from err


def load_config(
    model: type[ModelT], path: Path | str | None, default_name: str, overrides: Iterable[str] = ()
) -> ModelT:
    """Load `path` (or the packaged `default_name`), apply overrides and validate into `model`."""
    config_path = Path(path) if path is not None else packaged_config_path(default_name)
    data = apply_overrides(read_yaml(config_path), overrides)
    return validate_config(model, data, str(config_path))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys (for MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
