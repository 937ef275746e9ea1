"""Config checks that JSON Schema cannot express, and discovery of the raw batches.

``schemas/config.schema.yaml`` checks types, ranges and enums and fills defaults; this module
checks relations between keys and the file system. Every error names the config key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from dfdetect.facebatch import BATCH_FILE_GLOB, batch_file_name, batch_id

RAW_VIDEO_GLOB = "dfdc_train_part_*.zip"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key '{key}': {message}")
        self.key = key


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file as the workflow sees it, for the commands that run without Snakemake:
    validated against the same schema, with its defaults filled in, and checked."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load(Path(path).read_text()) or {}
    validate(config, str(SCHEMA_PATH))
    check_config(config)
    return config


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first setting that cannot work."""
    frames = config["frames"]
    if frames["min"] > frames["max"]:
        raise ConfigError("frames.min", f"{frames['min']} is above frames.max ({frames['max']}): the bounds are reversed")
    split = config["split"]
    train_share = (1 - split["test"]) * (1 - split["validation"])
    if train_share <= 0:
        raise ConfigError("split", f"test={split['test']} and validation={split['validation']} leave no training data")
    _check_encoders(config.get("models") or {})
    _check_recipes(config.get("models") or {})
    if not config["demo"]["enabled"]:
        _check_raw_sources(config)


def _check_encoders(models: Mapping[str, Any]) -> None:
    """``encoder_from`` names another configured single-frame model, and only td_lstm uses it."""
    for name, settings in models.items():
        source = settings.get("encoder_from")
        if not source:
            continue
        key = f"models.{name}.encoder_from"
        if settings.get("arch") != "td_lstm":
            raise ConfigError(key, "only arch td_lstm takes its frame encoder from another model")
        if source not in models:
            raise ConfigError(key, f"{source!r} is not a configured model (models: {', '.join(models)})")
        if models[source].get("arch") not in ("cnn", "transfer"):
            raise ConfigError(key, f"{source!r} must be a cnn or transfer model, not {models[source].get('arch')}")


def _check_recipes(models: Mapping[str, Any]) -> None:
    """Self-blended fakes are single frames: clip models (td_lstm) train on labelled fakes."""
    for name, settings in models.items():
        if settings.get("arch") == "td_lstm" and settings.get("fakes") not in (None, "labelled"):
            raise ConfigError(f"models.{name}.fakes", f"{settings['fakes']} makes single-frame fakes; "
                              "a td_lstm model needs fakes: labelled")


def _check_raw_sources(config: Mapping[str, Any]) -> None:
    raw_dir = Path(config["raw_dir"])
    raw_video_dir = config.get("raw_video_dir")
    if raw_video_dir:
        video_dir = Path(raw_video_dir)
        if not video_dir.is_dir():
            raise ConfigError("raw_video_dir", f"folder '{video_dir}' does not exist")
        if not any(video_dir.glob(RAW_VIDEO_GLOB)):
            raise ConfigError("raw_video_dir", f"folder '{video_dir}' holds no {RAW_VIDEO_GLOB}")
        if not raw_dir.is_dir():
            return  # raw videos alone are a valid source
    if not raw_dir.is_dir():
        raise ConfigError(
            "raw_dir",
            f"folder '{raw_dir}' does not exist (demo.enabled is false, so raw_dir must hold the "
            f"downloaded {BATCH_FILE_GLOB} files)",
        )
    if not raw_video_dir and not any(raw_dir.glob(BATCH_FILE_GLOB)):
        raise ConfigError("raw_dir", f"folder '{raw_dir}' holds no {BATCH_FILE_GLOB} files")


def demo_batch_ids(n_batches: int) -> list[str]:
    """Demo batches are named like the Kaggle parts: 0-0, 0-1, 1-0, 1-1, ..."""
    return [f"{index // 2}-{index % 2}" for index in range(n_batches)]


def raw_video_part_number(path: str | Path) -> str:
    """``dfdc_train_part_12.zip`` -> ``"12"``."""
    stem = Path(path).stem
    prefix = "dfdc_train_part_"
    number = stem[len(prefix):] if stem.startswith(prefix) else ""
    if not number.isdigit():
        raise ConfigError("raw_video_dir", f"{path}: not a raw DFDC part name (want dfdc_train_part_N.zip)")
    return str(int(number))


def discover_batches(config: Mapping[str, Any]) -> dict[str, str]:
    """Every batch id with the zip it is read from.

    Sources: the demo (when enabled), ``raw_dir``'s face batches, and the face batches that
    ``extract_faces`` writes from ``raw_video_dir``'s parts. The same id from two sources is an
    error, since the manifests are keyed by batch id.
    """
    results = Path(config["results_dir"])
    sources: dict[str, str] = {}

    def add(batch: str, path: Path) -> None:
        if batch in sources:
            raise ConfigError("raw_dir", f"batch {batch} comes from both {sources[batch]} and {path}")
        sources[batch] = str(path)

    if config["demo"]["enabled"]:
        for batch in demo_batch_ids(config["demo"]["batches"]):
            add(batch, results / "demo" / "raw" / batch_file_name(batch))
    else:
        raw_dir = Path(config["raw_dir"])
        if raw_dir.is_dir():
            for path in sorted(raw_dir.glob(BATCH_FILE_GLOB)):
                add(batch_id(path), path)
    if config.get("raw_video_dir"):
        for path in sorted(Path(config["raw_video_dir"]).glob(RAW_VIDEO_GLOB)):
            batch = f"{raw_video_part_number(path)}-0"
            add(batch, results / "faces" / batch_file_name(batch))
    return dict(sorted(sources.items(), key=lambda item: tuple(int(part) for part in item[0].split("-"))))


def raw_video_parts(config: Mapping[str, Any]) -> dict[str, str]:
    """Part number -> raw DFDC video zip, for the extract_faces rule."""
    if not config.get("raw_video_dir"):
        return {}
    return {raw_video_part_number(path): str(path) for path in sorted(Path(config["raw_video_dir"]).glob(RAW_VIDEO_GLOB))}
