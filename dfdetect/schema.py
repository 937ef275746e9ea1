"""The config schema (``schemas/config.schema.yaml``) as the one source of every default.

Settings dataclasses that library callers may build by hand (``FaceSettings``, ``DemoSpec``,
``PredictSettings``) take their field defaults from here, and ``TrainSettings`` fills a model
entry through ``dfdetect.config.complete_model_settings``: a default typed anywhere else would
drift from what the workflow does (``tests/test_config.py`` walks every settings class).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


@functools.cache
def config_schema() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text())


def section_schema(section: str) -> dict[str, Any]:
    """The schema of a top-level section (``faces``, ``demo``, ...); ``model`` is a models: entry."""
    schema = config_schema()
    return schema["$defs"]["model"] if section == "model" else schema["properties"][section]


def schema_default(section: str | None, key: str) -> Any:
    """The schema's default of ``section.key`` (``model`` for a models: entry; ``None`` for a
    top-level key); KeyError if none."""
    properties = config_schema()["properties"] if section is None else section_schema(section)["properties"]
    if "default" not in properties[key]:
        raise KeyError(f"the schema gives {section}.{key} no default")
    return properties[key]["default"]
