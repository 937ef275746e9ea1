"""The config schema (``dfdetect/config.schema.yaml``, package data) as the one source of every
default, enum and range.

The Snakefile validates the config against this file (``config.validate_config``); the library's
settings classes are built through the same validation (``dfdetect.config.section_settings``), so a
default typed anywhere else would drift from what the workflow does.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path
from typing import Any

# A package resource, so that an installed wheel finds it (a normal install unpacks it to a real file).
SCHEMA_PATH = Path(str(files("dfdetect") / "config.schema.yaml"))


@functools.cache
def config_schema() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text())


def section_schema(section: str) -> dict[str, Any]:
    """The schema of a top-level section (``faces``, ``demo``, ...); ``model`` is a models: entry,
    ``ensemble`` an ensembles: entry."""
    schema = config_schema()
    return schema["$defs"][section] if section in ("model", "ensemble") else schema["properties"][section]


def schema_default(section: str | None, key: str) -> Any:
    """The schema's default of ``section.key`` (``model`` for a models: entry; ``None`` for a
    top-level key); KeyError if none."""
    properties = config_schema()["properties"] if section is None else section_schema(section)["properties"]
    if "default" not in properties[key]:
        raise KeyError(f"the schema gives {section}.{key} no default")
    return properties[key]["default"]


def schema_enum(section: str | None, key: str) -> tuple[str, ...]:
    """The string values the schema allows for ``section.key`` (its ``enum``, or the string
    ``enum`` inside a ``oneOf``; for an array, its items')."""
    properties = config_schema()["properties"] if section is None else section_schema(section)["properties"]
    spec = properties[key]
    spec = spec.get("items", spec)
    for option in (spec, *spec.get("oneOf", ())):
        if "enum" in option:
            return tuple(option["enum"])
    raise KeyError(f"the schema gives {section}.{key} no enum")


def marked_keys(section: str, changes: str) -> frozenset[str]:
    """The keys of a section marked ``x-changes: CHANGES``."""
    properties = section_schema(section)["properties"]
    return frozenset(key for key, spec in properties.items() if spec.get("x-changes") == changes)


def speed_keys(section: str) -> frozenset[str]:
    """The keys of a section marked ``x-changes: speed``: they change how fast a job runs, not
    what it computes (resources, loader workers)."""
    return marked_keys(section, "speed")


def run_count_keys(section: str) -> frozenset[str]:
    """The keys of a section marked ``x-changes: runs`` (a model's ``repeats``): they change how many
    runs there are, not what any one run computes."""
    return marked_keys(section, "runs")
