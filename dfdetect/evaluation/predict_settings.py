"""The settings ``dfdetect predict`` scores with: the command line over the model's own
``scoring.json`` over ``--config`` over the schema's defaults (see ``dfdetect.evaluation.predict``),
and the Keras backend it selects. Apart from the scoring itself so that each reads on its own.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from dfdetect.config import complete_config
from dfdetect.data.faces.detect import FaceSettings
from dfdetect.evaluation.predict_inputs import FrameSelection
from dfdetect.evaluation.scoring import ModelSpec, read_scoring_settings
from dfdetect.layout import SCORING_FILE

# The command's logger: what these say belongs to `dfdetect predict`, under the name it always had.
log = logging.getLogger("dfdetect.evaluation.predict")


@dataclass(frozen=True)
class PredictSettings:
    """The config's faces, frames (step, count) and evaluation (aggregate, batch_size) settings.
    Build it with ``from_config`` (a complete config) or ``of`` (keywords over the schema's defaults)."""

    faces: FaceSettings
    step: int  # one slot per `step` frame indices
    count: int  # slots per video
    aggregation: str
    batch_size: int  # frames (or clips) per model batch

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "PredictSettings":
        """From a complete config (``load_config`` / ``default_config``)."""
        return cls(
            faces=FaceSettings.from_mapping(config["faces"]),
            step=config["frames"]["step"],
            count=config["frames"]["count"],
            aggregation=config["evaluation"]["aggregate"],
            batch_size=config["evaluation"]["batch_size"],
        )

    @classmethod
    def of(cls, faces: FaceSettings | None = None, **values: Any) -> "PredictSettings":
        """Keywords (step, count, aggregation, batch_size) over the schema's defaults, checked by it."""
        frames = {key: values.pop(key) for key in ("step", "count") if key in values}
        evaluation = {"aggregate": values.pop("aggregation")} if "aggregation" in values else {}
        if "batch_size" in values:
            evaluation["batch_size"] = values.pop("batch_size")
        if values:
            raise TypeError(f"PredictSettings.of: unknown settings {', '.join(values)}")
        settings = cls.from_config(complete_config({"frames": frames, "evaluation": evaluation}))
        return settings if faces is None else replace(settings, faces=faces)

    @property
    def selection(self) -> FrameSelection:
        return FrameSelection(self.step, self.count)

    @property
    def frame_limit(self) -> int:
        return self.selection.frame_limit


def with_model_scoring(
    config: Mapping[str, Any], scoring: Mapping[str, Any] | None, config_source: str | None = None
) -> dict[str, Any]:
    """A complete config with the settings the model was evaluated with (its ``scoring.json``,
    ``dfdetect.evaluation.scoring.scoring_settings``) over it. Where a config given on the command
    line (``config_source``) says otherwise, the model's setting wins and a warning says so."""
    if not scoring:
        return dict(config)
    merged: dict[str, Any] = dict(config)
    for key, value in scoring.items():
        if key not in config:
            continue  # a key this version does not know (or the model's own image_size): nothing to apply
        if isinstance(value, Mapping):
            for name, setting in value.items():
                if config_source and name in config[key] and config[key][name] != setting:
                    log.warning(
                        "%s says %s.%s %r, the model was evaluated with %r: the model's applies",
                        config_source,
                        key,
                        name,
                        config[key][name],
                        setting,
                    )
            merged[key] = {**config[key], **value}
        else:
            merged[key] = value
    return complete_config(merged)


def model_scoring_config(
    model_paths: Sequence[str | Path], config: Mapping[str, Any], config_path: str | None
) -> tuple[dict[str, Any], str]:
    """(the config the models score with, where its settings come from): their ``scoring.json`` over
    ``config``. An ensemble's models must have been evaluated alike (one workflow config does that);
    ValueError names the two files that differ."""
    found = [(read_scoring_settings(path), path) for path in model_paths]
    with_settings = [(settings, path) for (settings, path), _ in found if settings is not None]
    for settings, path in with_settings[1:]:
        if settings != with_settings[0][0]:
            raise ValueError(
                f"{with_settings[0][1]} and {path} differ: these models were evaluated with different "
                "settings, so no one way of scoring reproduces both evaluations"
            )
    config_source = f"--config {config_path}" if config_path else None
    for (settings, _), model_path in found:
        if settings is None:
            log.warning(
                "%s has no %s beside it: %s apply, which may not be what evaluation used",
                model_path,
                SCORING_FILE,
                config_source or "the schema's defaults",
            )
    if not with_settings:
        return dict(config), config_source or "the schema's defaults"
    settings, path = with_settings[0]
    return with_model_scoring(config, settings, config_source), f"as evaluated, {path}"


def describe_settings(settings: PredictSettings, source: str) -> str:
    return (
        f"scoring with frames step {settings.step}, count {settings.count}, aggregate {settings.aggregation} ({source})"
    )


def resolve_settings(args: argparse.Namespace, config: Mapping[str, Any], spec: ModelSpec) -> PredictSettings:
    """Command-line values over a complete config's (``load_config`` / ``default_config``).

    A clip model's slot count is its own (see the module docstring).
    """
    count = args.frames_count or config["frames"]["count"]
    if spec.is_clip_model:
        if args.frames_count not in (None, spec.n_slots):
            raise ValueError(
                f"the model scores clips of {spec.n_slots} slots, but --frames-count is "
                f"{args.frames_count}: use --frames-count {spec.n_slots} (or leave it out)"
            )
        if config["frames"]["count"] != spec.n_slots:
            log.info(
                "the model scores clips of %d slots: the config's frames.count (%d) does not apply",
                spec.n_slots,
                config["frames"]["count"],
            )
        count = spec.n_slots
    frames = {"step": args.frames_step or config["frames"]["step"], "count": count}
    evaluation = {
        "aggregate": args.aggregate or config["evaluation"]["aggregate"],
        "batch_size": args.batch_size or config["evaluation"]["batch_size"],
    }
    return PredictSettings.from_config(complete_config({**config, "frames": frames, "evaluation": evaluation}))


def choose_backend(requested: str | None, config: Mapping[str, Any]) -> str:
    return requested or os.environ.get("KERAS_BACKEND") or config["keras_backend"]
