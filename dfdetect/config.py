"""Config checks that JSON Schema cannot express.

``dfdetect/config.schema.yaml`` checks types, ranges and enums and fills defaults; this module
checks relations between keys and the file system. Every error names the config key. Errors and
their explanations are in ``dfdetect.config_errors``; the raw folders' checks and batch discovery
in ``dfdetect.sources``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

from dfdetect.config_errors import ConfigError, _number_from_text, did_you_mean, explain_error
from dfdetect.schema import SCHEMA_PATH, config_schema, run_count_keys, speed_keys
from dfdetect.sources import _check_evaluation_sets, _check_raw_sources


def load_config(path: str | Path, check_sources: bool = True) -> dict[str, Any]:
    """A config file as the workflow sees it, for the commands that run without Snakemake:
    validated against the same schema, with its defaults filled in, and checked.

    ``check_sources=False`` skips the raw-data checks, for commands that read no raw data
    (``dfdetect predict`` takes only its faces, frames and evaluation settings).
    """
    import yaml

    config = complete_config(yaml.safe_load(Path(path).read_text()) or {})
    check_config(config, check_sources)
    return config


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> None:
    """Snakemake's schema validation (it fills in the defaults in place), with a short error, then
    ``~`` expanded in the folder keys (``expand_home``), in place too.

    Snakemake's own error prints the whole schema (hundreds of lines) around jsonschema's one-line
    message; this raises ConfigError with the key path and a message that says what would be
    valid ("did you mean" for unknown keys and names). A number that YAML read as text (PyYAML
    reads ``1e-3`` as a string: YAML 1.1 wants ``1.0e-3``) is converted in place and accepted.
    """
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    while True:
        try:
            validate(config, str(schema_path))
            break
        except WorkflowError as error:
            causes = (*error.args, error.__cause__, error.__context__)  # Snakemake raises it inside `except`
            cause = next((arg for arg in causes if isinstance(arg, jsonschema.ValidationError)), None)
            if cause is None:
                raise
            if _number_from_text(config, cause):
                continue  # converted: validate again (one key at a time)
            key, message = explain_error(cause)
            raise ConfigError(key, message) from None
    expand_home(config)


def folder_keys(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], str]]:
    """(key as messages name it, the mapping that holds it, its key there) of every folder setting."""
    found: list[tuple[str, Mapping[str, Any], str]] = [
        (key, config, key) for key in ("results_dir", "raw_dir", "raw_video_dir") if config.get(key)
    ]
    for name, entry in ((config.get("evaluation") or {}).get("sets") or {}).items():
        found += [(f"evaluation.sets.{name}.{key}", entry, key) for key in ("raw_dir", "raw_video_dir") if key in entry]
    return found


def expand_home(config: dict[str, Any]) -> None:
    """A leading ``~`` in a folder setting becomes the home folder, once, for every reader and writer:
    Snakemake and ``open`` take ``~`` literally (a run would write into ``./~`` and look for its
    inputs at home)."""
    for _, holder, key in folder_keys(config):
        if isinstance(holder[key], str):
            holder[key] = os.path.expanduser(holder[key])  # type: ignore[index]


def complete_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` validated against the schema, with every default filled in.

    The schema is the only source of defaults: library code reads settings from what this (or
    the workflow's ``validate_config``, the same validation) returns, and keeps no defaults of its own.
    """
    completed = _as_yaml_types(config)
    validate_config(completed)
    return completed


def _as_yaml_types(value: Any) -> Any:
    """A deep copy with the types a YAML file gives (tuples as lists, any mapping as a dict), so that
    settings built in Python validate like those read from a config file."""
    if isinstance(value, Mapping):
        return {key: _as_yaml_types(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_yaml_types(item) for item in value]
    return value


def complete_section(section: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """One config section (``"model"``: one ``models:`` entry, ``"ensemble"``: one ``ensembles:``
    entry) validated against the schema, with its defaults filled in; ConfigError names the bad key
    (``faces.every_k``, ``models.model.epochs``)."""
    if section in ("model", "ensemble"):
        plural = f"{section}s"
        return complete_config({plural: {section: dict(values)}})[plural][section]
    return complete_config({section: dict(values)})[section]


def result_settings(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A section's settings without its speed keys (``x-changes: speed`` in the schema: resources,
    loader workers) and run-count keys (``x-changes: runs``: repeats): what the rules pass as
    ``params`` and what the resume fingerprint hashes, so that changing how fast a job runs, or how
    many runs of a model there are, reruns nothing that exists."""
    left_out = speed_keys(section) | run_count_keys(section)
    return {key: value for key, value in values.items() if key not in left_out}


def run_settings(model: Mapping[str, Any], run: int) -> dict[str, Any]:
    """Run ``run`` of a model's (complete) config entry: the same settings with seed ``seed + run``.

    Run 0 is the entry itself (the model users deploy); runs 1..repeats-1 differ in their seed only.
    """
    if not 0 <= run < model["repeats"]:
        raise ValueError(f"run {run} is outside the model's {model['repeats']} repeat(s)")
    return {**model, "seed": model["seed"] + run}


def ensemble_runs(config: Mapping[str, Any], name: str) -> int:
    """Runs of ensemble ``name``: run r combines run r of each member, so its member with the fewest runs decides."""
    models = config["models"]
    return min(models[member]["repeats"] for member in config["ensembles"][name]["members"])


def encoder_run(models: Mapping[str, Any], source: str, run: int) -> int:
    """The run of frame model ``source`` whose encoder run ``run`` of a td_lstm borrows: the same run
    where ``source`` has it, else its run 0."""
    return run if run < models[source]["repeats"] else 0


def results_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A complete config without its speed keys, in every section and model: the settings the
    results depend on (what the report shows as the run's configuration)."""
    sections = config_schema()["properties"]

    def without_speed(values: Mapping[str, Any], section: str) -> dict[str, Any]:
        return {key: value for key, value in values.items() if key not in speed_keys(section)}

    kept: dict[str, Any] = {}
    for key, value in config.items():
        if key == "models":
            kept[key] = {name: without_speed(entry, "model") for name, entry in value.items()}
        elif isinstance(value, Mapping) and "properties" in sections.get(key, {}):
            kept[key] = without_speed(value, key)
        else:
            kept[key] = value
    return kept


S = TypeVar("S", bound="SectionSettings")


class SectionSettings:
    """Base of the frozen dataclasses that type one config section for the library.

    They hold no defaults and no range checks of their own: ``from_mapping`` (and ``of``) validate
    the values against the schema, fill in its defaults and keep the fields, the one way settings
    reach library code. Keys of the section that are not fields (``resources``) are accepted and left out.
    """

    SECTION: ClassVar[str]  # a top-level section, or "model" for a models: entry

    @classmethod
    def from_mapping(cls: type[S], values: Mapping[str, Any] | None = None) -> S:
        completed = complete_section(cls.SECTION, values or {})
        return cls(**{field.name: completed[field.name] for field in dataclasses.fields(cls)})  # type: ignore[arg-type]

    @classmethod
    def of(cls: type[S], **values: Any) -> S:
        """``from_mapping`` with keywords: ``FaceSettings.of(every_k=5)``."""
        return cls.from_mapping(values)


def default_config() -> dict[str, Any]:
    """The configuration an empty config file means: every schema default."""
    return complete_config({})


def check_config(config: Mapping[str, Any], check_sources: bool = True, check_backend: bool = False) -> None:
    """Raise ConfigError for the first setting that cannot work.

    ``check_sources``: also the files the config names (raw data, evaluation sets, local weights);
    ``check_backend``: also that the Keras backend's package is installed here (the workflow's
    main process, when its jobs run in the same environment).
    """
    frames = config["frames"]
    if frames["min"] > frames["max"]:
        raise ConfigError(
            "frames.min", f"{frames['min']} is above frames.max ({frames['max']}): the bounds are reversed"
        )
    split = config["split"]
    train_share = (1 - split["test"]) * (1 - split["validation"])
    if train_share <= 0:
        raise ConfigError("split", f"test={split['test']} and validation={split['validation']} leave no training data")
    models = config.get("models") or {}
    _check_architectures(models, config["image_size"])
    _check_encoders(models)
    _check_ensembles(models, config.get("ensembles") or {})
    _check_baseline(config)
    _check_results_dir(Path(config["results_dir"]))
    _check_recipes(models)
    if check_backend and models:
        _check_backend_installed(config["keras_backend"])
    if check_sources:
        _check_raw_folders_apart(config)
        _check_weights_files(models)
    if check_sources and not config["demo"]["enabled"]:
        _check_raw_sources(config)
    if check_sources:
        _check_evaluation_sets(config)


# The Python package each Keras backend needs, and how to install it.
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", 'pip install -e ".[gpu]" (or tensorflow-cpu, the default install)'),
    "jax": ("jax", 'pip install -e ".[jax]" (JAX with CUDA 12)'),
    "torch": ("torch", "pip install torch"),
}


def _check_backend_installed(backend: str) -> None:
    package, install = BACKEND_PACKAGES[backend]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            "keras_backend",
            f"{backend}: the package {package} is not installed in this environment ({sys.executable}); "
            f"install it with {install}, or choose another backend",
        )


# The smallest image_size each Keras Applications backbone builds at: 32 unless listed (Keras's
# `min_size` of each builder; tests/test_models.py reads them from Keras).
BACKBONE_MIN_IMAGE_SIZE = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}


def backbone_min_image_size(backbone: str) -> int:
    return BACKBONE_MIN_IMAGE_SIZE.get(backbone, 32)


def _check_architectures(models: Mapping[str, Any], image_size: int) -> None:
    """Each arch gets the keys it uses: transfer a Keras Applications backbone, td_lstm one or cnn,
    and the fixed cnn none of the backbone keys (a set one would be ignored without a word); a
    backbone builds at ``image_size``."""
    for name, settings in models.items():
        arch, backbone = settings["arch"], settings.get("backbone")
        key = f"models.{name}"
        smallest = backbone_min_image_size(backbone) if backbone and backbone != "cnn" else None
        if arch != "cnn" and smallest and image_size < smallest:
            raise ConfigError(
                "image_size",
                f"{image_size} px is below {smallest} px, the smallest input {backbone} (models.{name}.backbone) "
                "builds at: raise image_size or choose another backbone",
            )
        if arch == "transfer" and backbone is None:
            raise ConfigError(
                f"{key}.backbone", "arch transfer needs a backbone: a Keras Applications name such as EfficientNetB0"
            )
        if arch == "transfer" and backbone == "cnn":
            raise ConfigError(
                f"{key}.backbone", "cnn is the td_lstm's frame encoder; for the study's CNN write arch: cnn"
            )
        if arch == "cnn":
            given = [part for part in ("backbone", "pooling", "trainable_layers") if settings.get(part) is not None]
            given += ["weights"] if settings.get("weights") is not None else []
            if given:
                raise ConfigError(
                    f"{key}.{given[0]}",
                    "arch cnn is the study's fixed CNN and takes no backbone, weights, pooling or trainable_layers "
                    "(for a Keras Applications backbone write arch: transfer)",
                )
        if arch == "td_lstm" and backbone in (None, "cnn") and settings.get("weights") is not None:
            raise ConfigError(
                f"{key}.weights", "weights load a Keras Applications backbone; the td_lstm's cnn has none"
            )


def _check_weights_files(models: Mapping[str, Any]) -> None:
    """A local ``weights`` file exists and is an .h5 file (imagenet and null need no file)."""
    for name, settings in models.items():
        weights = settings.get("weights")
        if weights is None or str(weights).lower() == "imagenet":
            continue
        path = Path(str(weights)).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"models.{name}.weights",
                f"file '{path}' does not exist; weights are imagenet, null, or a local Keras Applications .h5 file",
            )
        if not path.name.endswith((".h5", ".hdf5")):
            raise ConfigError(
                f"models.{name}.weights", f"'{path}' is not an .h5 file (a *_notop.h5 file, or one from save_weights)"
            )


def _check_results_dir(results: Path) -> None:
    """results_dir, or the nearest of its parents that exists, must be a folder (not a file)."""
    for folder in (results, *results.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == results else f"is below '{folder}', which is a file"
                raise ConfigError("results_dir", f"'{results}' {where}; it must be a folder (or not exist yet)")
            return


def raw_folders(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(config key, folder) of every raw data folder the workflow reads (raw_dir only without the demo)."""
    return [
        (key, holder[name])
        for key, holder, name in folder_keys(config)
        if key != "results_dir" and holder[name] and not (key == "raw_dir" and config["demo"]["enabled"])
    ]


def _check_raw_folders_apart(config: Mapping[str, Any]) -> None:
    """Raw data and results never share a folder: the workflow writes, replaces and deletes files
    under results_dir (and a user's `rm -rf results` must never reach the raw data)."""
    results = Path(config["results_dir"]).resolve()
    for key, folder in raw_folders(config):
        raw = Path(folder).resolve()
        named = f"'{folder}' and results_dir '{config['results_dir']}'"
        if raw == results:
            raise ConfigError(key, f"{named} are the same folder: outputs would be written among the raw data")
        if results in raw.parents:
            raise ConfigError(
                key,
                f"{named}: the raw folder is inside results_dir, where the workflow writes and deletes "
                "files; keep raw data outside it (copy generated demo batches out first to use them as raw data)",
            )
        if raw in results.parents:
            raise ConfigError(
                "results_dir",
                f"'{config['results_dir']}' is inside {key} '{folder}': outputs would be written among the raw "
                "data; choose a results_dir outside it",
            )


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
            raise ConfigError(
                key,
                f"{source!r} is not a configured model{did_you_mean(source, models)} (models: {', '.join(models)})",
            )
        if models[source].get("arch") not in ("cnn", "transfer"):
            raise ConfigError(key, f"{source!r} must be a cnn or transfer model, not {models[source].get('arch')}")


def _check_ensembles(models: Mapping[str, Any], ensembles: Mapping[str, Any]) -> None:
    """An ensemble's members are configured models; its name is not a model's (both live under eval/)."""
    for name, entry in ensembles.items():
        if name in models:
            raise ConfigError(f"ensembles.{name}", f"{name!r} is also a model's name; give the ensemble its own")
        unknown = [member for member in entry.get("members") or () if member not in models]
        if unknown:
            raise ConfigError(
                f"ensembles.{name}.members",
                f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not a configured model "
                f"(models: {', '.join(models) or 'none'})",
            )


def _check_baseline(config: Mapping[str, Any]) -> None:
    baseline = (config.get("evaluation") or {}).get("baseline")
    known = [*(config.get("models") or {}), *(config.get("ensembles") or {})]
    if baseline is not None and baseline not in known:
        raise ConfigError(
            "evaluation.baseline", f"{baseline!r} is not a configured model or ensemble ({', '.join(known) or 'none'})"
        )


def _check_recipes(models: Mapping[str, Any]) -> None:
    """Self-blended fakes are single frames: clip models (td_lstm) train and validate on labelled fakes."""
    for name, settings in models.items():
        if settings.get("arch") != "td_lstm":
            continue
        if settings.get("fakes") not in (None, "labelled"):
            raise ConfigError(
                f"models.{name}.fakes",
                f"{settings['fakes']} makes single-frame fakes; a td_lstm model needs fakes: labelled",
            )
        if settings.get("selection") == "self_blended":
            raise ConfigError(
                f"models.{name}.selection",
                "self_blended validates on single-frame fakes; a td_lstm model selects on labelled videos",
            )
