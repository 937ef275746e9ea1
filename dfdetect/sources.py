"""Where each dataset's face batches come from: the raw folders, the demo, the evaluation sets.

The checks of the raw folders and the discovery of their batches (what the rules read) live here,
apart from the config's other checks in ``dfdetect.config``; every error names the config key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dfdetect.config_errors import ConfigError
from dfdetect.layout import (
    BATCH_FILE_GLOB,
    BATCH_FILE_PATTERN,
    RAW_VIDEO_GLOB,
    RAW_VIDEO_PATTERN,
    TRAINING_DATA,
    ResultsLayout,
    batch_id,
    demo_batch_ids,
    raw_video_part_number,
)


def _check_raw_sources(config: Mapping[str, Any]) -> None:
    raw_dir = Path(config["raw_dir"])
    raw_video_dir = config.get("raw_video_dir")
    _check_source_folders("raw_dir", raw_dir if raw_dir.is_dir() else None, raw_video_dir and Path(raw_video_dir))
    if raw_video_dir and not raw_dir.is_dir():
        return  # raw videos alone are a valid source
    if not raw_dir.is_dir():
        raise ConfigError(
            "raw_dir",
            f"folder '{raw_dir}' does not exist (demo.enabled is false, so raw_dir must hold the "
            f"downloaded {BATCH_FILE_GLOB} files)",
        )
    if not raw_video_dir and not any(raw_dir.glob(BATCH_FILE_GLOB)):
        raise ConfigError("raw_dir", f"folder '{raw_dir}' holds no {BATCH_FILE_GLOB} files")


# What each source folder holds: key suffix -> (file name pattern, what such a file is, its name)
SOURCE_FILES = {
    "raw_dir": (BATCH_FILE_PATTERN, "face batch", "deepfake-detection-faces-part-I-J.zip"),
    "raw_video_dir": (RAW_VIDEO_PATTERN, "raw DFDC video part", "dfdc_train_part_N.zip"),
}


def _check_source_folders(key: str, raw_dir: Path | None, raw_video_dir: Path | None) -> None:
    """``raw_video_dir`` exists and holds parts, and every .zip in either folder has the name of
    what that folder holds: a misnamed one would be left out of the run without a word.

    ``key`` names ``raw_dir`` (``raw_dir`` or ``evaluation.sets.NAME.raw_dir``); the same folder may
    serve both keys.
    """
    prefix = key.removesuffix("raw_dir")
    if raw_video_dir is not None:
        if not raw_video_dir.is_dir():
            raise ConfigError(f"{prefix}raw_video_dir", f"folder '{raw_video_dir}' does not exist")
        if not any(raw_video_dir.glob(RAW_VIDEO_GLOB)):
            raise ConfigError(f"{prefix}raw_video_dir", f"folder '{raw_video_dir}' holds no {RAW_VIDEO_GLOB} files")
    folders = {"raw_dir": raw_dir, "raw_video_dir": raw_video_dir}
    for folder_key, folder in folders.items():
        if folder is None:
            continue
        accepted = [
            name for name, other in folders.items() if other is not None and other.resolve() == folder.resolve()
        ]
        for path in sorted(folder.glob("*.zip")):
            if any(SOURCE_FILES[name][0].match(path.name) for name in accepted):
                continue
            _, what, want = SOURCE_FILES[folder_key]
            other = next(
                (name for name in SOURCE_FILES if name not in accepted and SOURCE_FILES[name][0].match(path.name)), None
            )
            hint = f"; a {SOURCE_FILES[other][1]} belongs in {prefix}{other}" if other else ""
            raise ConfigError(
                f"{prefix}{folder_key}",
                f"'{path}' is not named like a {what} ({want}), so it would not be read: rename it or move it "
                f"out of the folder{hint}",
            )


def _check_evaluation_sets(config: Mapping[str, Any]) -> None:
    """Each set names one kind of source, and its folders exist and hold batches."""
    for name, entry in (config["evaluation"].get("sets") or {}).items():
        key = f"evaluation.sets.{name}"
        if "demo" in entry and ({"raw_dir", "raw_video_dir"} & set(entry)):
            raise ConfigError(key, "a set is either generated (demo) or read from raw_dir / raw_video_dir, not both")
        for folder_key, glob in (("raw_dir", BATCH_FILE_GLOB), ("raw_video_dir", RAW_VIDEO_GLOB)):
            if folder_key not in entry:
                continue
            folder = Path(entry[folder_key])
            if not folder.is_dir():
                raise ConfigError(f"{key}.{folder_key}", f"folder '{folder}' does not exist")
            if not any(folder.glob(glob)):
                raise ConfigError(f"{key}.{folder_key}", f"folder '{folder}' holds no {glob} files")
        folders = {folder_key: Path(entry[folder_key]) if folder_key in entry else None for folder_key in SOURCE_FILES}
        _check_source_folders(f"{key}.raw_dir", folders["raw_dir"], folders["raw_video_dir"])


def part_number(path: str | Path) -> str:
    """A raw video part's number, or ConfigError naming ``raw_video_dir``."""
    try:
        return raw_video_part_number(path)
    except ValueError as error:
        raise ConfigError("raw_video_dir", str(error)) from None


@dataclass(frozen=True)
class DataSource:
    """Where one dataset's face batches come from: the training data (``data`` "") or an
    evaluation set (``data`` "sets/NAME/", prepared by the same rules under that folder)."""

    data: str
    key: str  # the config key that names it, for messages ("raw_dir", "evaluation.sets.NAME")
    demo: dict[str, Any] | None  # a DemoSpec's arguments plus "batches", when generated
    raw_dir: str | None
    raw_video_dir: str | None


def data_sources(config: Mapping[str, Any]) -> dict[str, DataSource]:
    """The training data and every evaluation set, keyed by their ``data`` prefix."""
    main_demo = {key: value for key, value in config["demo"].items() if key != "enabled"}
    sources = {
        TRAINING_DATA: DataSource(
            TRAINING_DATA,
            "raw_dir",
            main_demo if config["demo"]["enabled"] else None,
            None if config["demo"]["enabled"] else config["raw_dir"],
            config.get("raw_video_dir"),
        )
    }
    for name, entry in (config["evaluation"].get("sets") or {}).items():
        data = ResultsLayout.set_data(name)
        demo = {**main_demo, **entry["demo"]} if "demo" in entry else None
        sources[data] = DataSource(
            data, f"evaluation.sets.{name}", demo, entry.get("raw_dir"), entry.get("raw_video_dir")
        )
    return sources


def evaluation_sets(config: Mapping[str, Any]) -> list[str]:
    return list(config["evaluation"].get("sets") or {})


def demo_spec(config: Mapping[str, Any], data: str = TRAINING_DATA) -> dict[str, Any]:
    """The DemoSpec arguments of a generated dataset (the training demo or a demo set)."""
    demo = data_sources(config)[data].demo
    if demo is None:
        raise ConfigError(data_sources(config)[data].key, "this dataset is not generated by the demo")
    return {key: value for key, value in demo.items() if key != "batches"}


def discover_batches(config: Mapping[str, Any], data: str = TRAINING_DATA) -> dict[str, str]:
    """Every batch id of one dataset (the training data by default) with the zip it is read from.

    Sources: the demo (when enabled), ``raw_dir``'s face batches, and the face batches that
    ``extract_faces`` writes from ``raw_video_dir``'s parts. The same id from two sources is an
    error, since the manifests are keyed by batch id; an evaluation set may repeat the training
    data's ids (its tables live in their own folder).
    """
    layout = ResultsLayout(config["results_dir"])
    source = data_sources(config)[data]
    sources: dict[str, str] = {}

    def add(batch: str, path: Path) -> None:
        if batch in sources:
            raise ConfigError(source.key, f"batch {batch} comes from both {sources[batch]} and {path}")
        sources[batch] = str(path)

    if source.demo is not None:
        for batch in demo_batch_ids(source.demo["batches"]):
            add(batch, Path(layout.demo_zip(batch, data)))
    elif source.raw_dir:
        raw_dir = Path(source.raw_dir)
        if raw_dir.is_dir():
            for path in sorted(raw_dir.glob(BATCH_FILE_GLOB)):
                try:
                    add(batch_id(path), path)
                except ValueError as error:  # a name the glob matches that is no batch id ("part-..-1")
                    raise ConfigError(source.key, str(error)) from None
    if source.raw_video_dir:
        for path in sorted(Path(source.raw_video_dir).glob(RAW_VIDEO_GLOB)):
            part = part_number(path)
            add(f"{part}-0", Path(layout.faces_zip(part, data)))
    return dict(sorted(sources.items(), key=lambda item: tuple(int(part) for part in item[0].split("-"))))


def raw_video_parts(config: Mapping[str, Any], data: str = TRAINING_DATA) -> dict[str, str]:
    """Part number -> raw DFDC video zip of one dataset, for the extract_faces rule."""
    folder = data_sources(config)[data].raw_video_dir
    if not folder:
        return {}
    return {part_number(path): str(path) for path in sorted(Path(folder).glob(RAW_VIDEO_GLOB))}
