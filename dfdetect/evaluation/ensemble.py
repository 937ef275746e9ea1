"""Ensembles: models combined from their members' calibrated video scores, without training.

Every top DFDC solution averaged several models. An ensemble here (``ensembles: {NAME: {members:
[...], combine: mean | logit_mean}}``) takes each member's video scores from its evaluation (test,
validation, each evaluation set) and combines them per video:

- ``mean``: the mean of the members' probabilities;
- ``logit_mean``: the sigmoid of the mean of their logits (a geometric mean of the odds).

``p_fake`` combines the members' raw scores and ``p_fake_calibrated`` their calibrated ones, so an
ensemble is evaluated exactly like a model (metrics, threshold chosen on its validation scores,
plots) and its calibrated scores are what it outputs; ``dfdetect predict`` with several models
combines the same way (``combine_scores``). Run r of an ensemble combines run r of each member.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from dfdetect.config import SectionSettings
from dfdetect.data.facebatch import MANIPULATION_COLUMN
from dfdetect.evaluation.calibration import logit
from dfdetect.evaluation.evaluate import (
    CALIBRATED_COLUMN,
    EvaluationPaths,
    SetEvaluationPaths,
    calibrated_metrics,
    scored_metrics,
    validation_metrics,
    write_evaluation,
    write_set_evaluation,
)

log = logging.getLogger(__name__)

COMBINE_METHODS = ("mean", "logit_mean")
ENSEMBLE_ARCH = "ensemble"  # the arch column of an ensemble's row in the comparison
SCORE_COLUMNS = ("p_fake", CALIBRATED_COLUMN, "p_fake_middle")


def combine_scores(scores: Sequence[Any], method: str) -> np.ndarray:
    """Per-video combination of the members' scores (one array per member, the same videos in the same order)."""
    if method not in COMBINE_METHODS:
        raise ValueError(f"unknown combine {method!r}; expected one of {', '.join(COMBINE_METHODS)}")
    stacked = np.vstack([np.asarray(member, dtype=np.float64).reshape(-1) for member in scores])
    if method == "mean":
        return stacked.mean(axis=0)
    return expit(logit(stacked).mean(axis=0))


def ensemble_predictions(members: Mapping[str, pd.DataFrame], method: str) -> pd.DataFrame:
    """One predictions table from the members' (same videos; the first member's order): each score
    column combined, ``n_frames_scored`` the fewest any member scored.

    ValueError naming the member whose videos or labels differ from the first one's.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    names = list(members)
    first = members[names[0]].reset_index(drop=True)
    order = first["video_id"]
    aligned = {}
    for name, table in members.items():
        missing = set(order) - set(table["video_id"])
        extra = set(table["video_id"]) - set(order)
        if missing or extra or table["video_id"].duplicated().any():
            raise ValueError(
                f"member {name!r} scored other videos than {names[0]!r} "
                f"({len(missing)} missing, {len(extra)} extra, e.g. {sorted(missing | extra)[:3]})"
            )
        table = table.set_index("video_id").loc[order].reset_index()
        if not np.array_equal(table["label"].to_numpy(), first["label"].to_numpy()):
            raise ValueError(f"member {name!r} gives other labels than {names[0]!r} for the same videos")
        aligned[name] = table
    combined = first[["video_id", "family", "label"]].copy()
    for column in SCORE_COLUMNS:
        combined[column] = combine_scores([table[column] for table in aligned.values()], method)
    counts = np.vstack([table["n_frames_scored"].to_numpy() for table in aligned.values()])
    combined["n_frames_scored"] = counts.min(axis=0).astype("int32")
    if MANIPULATION_COLUMN in first.columns:
        combined[MANIPULATION_COLUMN] = first[MANIPULATION_COLUMN].to_numpy()
    return combined


@dataclass(frozen=True)
class EnsembleSettings(SectionSettings):
    """One ``ensembles:`` entry (the schema's defaults; the config checks name its members)."""

    members: list[str]
    combine: str

    SECTION: ClassVar[str] = "ensemble"

    def describe(self) -> str:
        return f"{self.combine} of {', '.join(self.members)}"


def ensemble_metrics(
    name: str, settings: EnsembleSettings, scored: pd.DataFrame, validation: pd.DataFrame, n_resamples: int, seed: int
) -> dict[str, Any]:
    arch = (
        ENSEMBLE_ARCH if scored["p_fake_middle"].notna().all() else "td_lstm"
    )  # middle frames only where all have one
    metrics = scored_metrics(name, arch, settings.combine, scored, validation, n_resamples, seed)
    metrics |= {"arch": ENSEMBLE_ARCH, "aggregation": settings.combine, "members": list(settings.members)}
    return metrics


def members_calibration(settings: EnsembleSettings) -> str:
    return f"{settings.combine} of the members' calibrated scores"


def read_members(paths: Mapping[str, str | Path], settings: EnsembleSettings) -> dict[str, pd.DataFrame]:
    absent = [member for member in settings.members if member not in paths]
    if absent:
        raise ValueError(f"no predictions for member(s) {', '.join(absent)}")
    return {member: pd.read_parquet(paths[member]) for member in settings.members}


def evaluate_ensemble(
    name: str,
    settings: EnsembleSettings,
    *,
    predictions: Mapping[str, str | Path],
    validation_predictions: Mapping[str, str | Path],
    paths: EvaluationPaths,
    n_resamples: int,
    seed: int,
    calibration_bins: int,
) -> dict[str, Any]:
    """Combine the members' test and validation predictions (member -> predictions.parquet) and write
    the ensemble's evaluation to ``paths``, like a model's."""
    test = ensemble_predictions(read_members(predictions, settings), settings.combine)
    validation = ensemble_predictions(read_members(validation_predictions, settings), settings.combine)
    metrics = ensemble_metrics(name, settings, test, validation, n_resamples, seed)
    metrics |= calibrated_metrics(test, "members", members_calibration(settings), calibration_bins)
    metrics["validation"] = validation_metrics(validation, calibration_bins)
    write_evaluation(name, test, validation, paths, metrics, calibration_bins, f"{settings.combine} of calibrated")
    return metrics


def evaluate_ensemble_set(
    name: str,
    settings: EnsembleSettings,
    set_name: str,
    *,
    predictions: Mapping[str, str | Path],
    validation_predictions_path: str | Path,
    paths: SetEvaluationPaths,
    n_resamples: int,
    seed: int,
    calibration_bins: int,
) -> dict[str, Any]:
    """The ensemble on evaluation set ``set_name`` from its members' set predictions; the threshold is
    the one chosen on the ensemble's own validation scores (``validation_predictions_path``)."""
    scored = ensemble_predictions(read_members(predictions, settings), settings.combine)
    validation = pd.read_parquet(validation_predictions_path)
    metrics = {"set": set_name, **ensemble_metrics(name, settings, scored, validation, n_resamples, seed)}
    metrics |= calibrated_metrics(scored, "members", members_calibration(settings), calibration_bins)
    write_set_evaluation(name, set_name, scored, paths, metrics)
    return metrics
