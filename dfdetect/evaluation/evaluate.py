"""Score a trained model on the validation and test videos, and write its evaluation.

Scores come from the one scoring path (``dfdetect.evaluation.scoring``): single-frame models score every
filled slot of a video and the scores are aggregated into one video score (mean, median or the
DFDC winner's confident mean), with the middle frame's score alone (the study's setting) kept
beside it; ``td_lstm`` scores the whole clip. Metrics come from probabilities
(``dfdetect.evaluation.metrics``); the decision threshold is chosen on validation.

Each model's scores are calibrated (``dfdetect.evaluation.calibration``): the map is fitted on the
validation split's video scores, written next to the model, and applied to every split and set
(column ``p_fake_calibrated``); metrics give raw and calibrated log loss and expected calibration
error, and ``submission.csv`` holds the calibrated scores (what ``dfdetect predict`` writes).

The files written are exactly those of an ``EvaluationPaths``, which the evaluate rule builds
from its declared outputs. Keras is imported inside the functions, after the backend is selected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pandas as pd

from dfdetect.atomic import atomic_path, atomic_to_parquet, atomic_write_text
from dfdetect.corrupt import read_parquet
from dfdetect.data.store import StorePaths
from dfdetect.evaluation.calibration import Calibration, calibration_metrics, fit_calibration
from dfdetect.evaluation.calibration import load as load_calibration
from dfdetect.evaluation.metrics import (
    evaluation_metrics,
    expected_calibration_error,
    per_manipulation_auc,
    probability_metrics,
)
from dfdetect.evaluation.plots import (
    plot_confusion_matrix,
    plot_precision_recall,
    plot_reliability,
    plot_roc,
    plot_score_histograms,
)
from dfdetect.evaluation.scoring import PREDICTION_COLUMNS, check_aggregation, score_store_videos
from dfdetect.layout import EVALUATION_FILES, SET_EVALUATION_FILES, RulePaths
from dfdetect.training.backend import select_backend

log = logging.getLogger(__name__)

CALIBRATED_COLUMN = "p_fake_calibrated"  # beside p_fake in every predictions table

__all__ = [
    "CALIBRATED_COLUMN",
    "PREDICTION_COLUMNS",
    "EvaluationPaths",
    "SetEvaluationPaths",
    "evaluate_model",
    "evaluate_set",
    "submission_table",
]


@dataclass(frozen=True)
class EvaluationPaths(RulePaths):
    """Every file evaluate writes; the field names are the evaluate rule's output names."""

    predictions: Path
    validation_predictions: Path
    metrics: Path
    roc: Path
    precision_recall: Path
    confusion: Path
    scores: Path
    reliability: Path  # reliability diagrams of validation and test, raw and calibrated
    submission: Path

    FILES: ClassVar[Mapping[str, str]] = EVALUATION_FILES


@dataclass(frozen=True)
class SetEvaluationPaths(RulePaths):
    """Every file evaluate_set writes; the field names are the evaluate_set rule's output names."""

    predictions: Path
    metrics: Path
    roc: Path
    precision_recall: Path
    confusion: Path
    scores: Path

    FILES: ClassVar[Mapping[str, str]] = SET_EVALUATION_FILES


def submission_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """The competition's format: filename, label = calibrated probability of FAKE."""
    return pd.DataFrame(
        {"filename": predictions["video_id"] + ".mp4", "label": predictions[CALIBRATED_COLUMN].round(6)}
    )


def with_calibrated(scored: pd.DataFrame, calibration: Calibration) -> pd.DataFrame:
    """``scored`` with ``p_fake_calibrated`` (``calibration`` applied to ``p_fake``) right after ``p_fake``."""
    table = scored.drop(columns=[CALIBRATED_COLUMN], errors="ignore")
    table.insert(table.columns.get_loc("p_fake") + 1, CALIBRATED_COLUMN, calibration.apply(table["p_fake"]))
    return table


def calibrated_metrics(scored: pd.DataFrame, method: str, description: str, bins: int) -> dict[str, Any]:
    """metrics.json's ECE of the raw scores and its ``calibrated`` block (log loss, ECE)."""
    labels, raw, calibrated = scored["label"], scored["p_fake"], scored[CALIBRATED_COLUMN]
    return {
        "ece": expected_calibration_error(labels, raw, bins),
        "calibrated": {
            "method": method,
            "calibration": description,
            "log_loss": probability_metrics(labels, calibrated)["log_loss"],
            "ece": expected_calibration_error(labels, calibrated, bins),
        },
    }


def validation_metrics(validation: pd.DataFrame, bins: int) -> dict[str, Any]:
    """metrics.json's ``validation`` block: where the calibration was fitted, raw and calibrated."""
    labels = validation["label"]
    return {
        "n": int(len(validation)),
        **calibration_metrics(labels, validation["p_fake"], validation[CALIBRATED_COLUMN], bins),
    }


def write_reliability(
    name: str, tables: Mapping[str, pd.DataFrame], bins: int, path: str | Path, calibrated_name: str
) -> None:
    panels = {what: (table["label"], table["p_fake"], table[CALIBRATED_COLUMN]) for what, table in tables.items()}
    plot_reliability(panels, bins, path, f"{name}: reliability", calibrated_name)


def load_scoring(model_path: str | Path, store_paths: Sequence[StorePaths], backend: str) -> tuple[Any, Any]:
    """The saved model and the frame store, with the backend selected before Keras is imported."""
    select_backend(backend)
    from dfdetect.data.store import FrameStore
    from dfdetect.training.models import load_model

    return load_model(model_path), FrameStore(store_paths)


def scored_metrics(
    name: str, arch: str, aggregation: str, scored: pd.DataFrame, validation: pd.DataFrame, n_resamples: int, seed: int
) -> dict[str, Any]:
    """metrics.json of one scored table: probability metrics, both thresholds (chosen on
    ``validation``), the middle frame's metrics, and ROC AUC per manipulation when the data says."""
    metrics = evaluation_metrics(scored, validation, n_resamples=n_resamples, seed=seed)
    metrics = {"model": name, "arch": arch, "aggregation": aggregation if arch != "td_lstm" else "clip", **metrics}
    if arch != "td_lstm":
        # The study's setting, for comparison: one frame per video, no aggregation.
        metrics["middle_frame"] = probability_metrics(scored["label"], scored["p_fake_middle"])
    per_manipulation = per_manipulation_auc(scored, n_resamples=n_resamples, seed=seed)
    if per_manipulation:
        metrics["per_manipulation"] = per_manipulation
    return metrics


def write_plots(name: str, scored: pd.DataFrame, threshold: float, paths: Any, what: str) -> None:
    """ROC, precision-recall, confusion matrix (at ``threshold``) and score histograms of ``scored``."""
    labels, scores = scored["label"].to_numpy(), scored["p_fake"].to_numpy()
    plot_roc(labels, scores, paths.roc, f"{name}: ROC ({what}, n={len(scored)})")
    plot_precision_recall(labels, scores, paths.precision_recall, f"{name}: precision-recall ({what})")
    plot_confusion_matrix(
        labels, scores, threshold, paths.confusion, f"{name}: {what} at validation threshold {threshold:.2f}"
    )
    plot_score_histograms(
        labels,
        scores,
        paths.scores,
        f"{name}: video scores ({what})",
        thresholds={"threshold": 0.5, "validation threshold": threshold},
    )


def evaluate_model(
    name: str,
    settings: Mapping[str, Any],
    *,
    model_path: str | Path,
    store_paths: Sequence[StorePaths],
    test_path: str | Path,
    validation_path: str | Path,
    paths: EvaluationPaths,
    backend: str,
    aggregation: str,
    n_resamples: int,
    seed: int,
    batch_size: int,
    calibration_path: str | Path,
    calibration_method: str,
    calibration_bins: int,
) -> dict[str, Any]:
    """Write predictions, metrics.json, plots and submission.csv for model ``name`` to ``paths``, and
    the calibration fitted on its validation scores to ``calibration_path`` (next to the model).

    ``aggregation``, ``n_resamples``, ``seed``, ``batch_size`` and the calibration settings are the
    config's ``evaluation`` section (its defaults are the schema's).
    """
    check_aggregation(aggregation)
    model, store = load_scoring(model_path, store_paths, backend)
    arch = settings["arch"]
    test = score_store_videos(model, store, read_parquet(test_path), aggregation, batch_size)
    validation = score_store_videos(model, store, read_parquet(validation_path), aggregation, batch_size)
    calibration = fit_calibration(validation["label"], validation["p_fake"], calibration_method, calibration_bins)
    calibration.save(calibration_path)
    test, validation = with_calibrated(test, calibration), with_calibrated(validation, calibration)
    log.info("%s: calibration %s%s", name, calibration.describe(), f" ({calibration.note})" if calibration.note else "")
    metrics = scored_metrics(name, arch, aggregation, test, validation, n_resamples, seed)
    metrics |= calibrated_metrics(test, calibration.method, calibration.describe(), calibration_bins)
    metrics["validation"] = validation_metrics(validation, calibration_bins)
    write_evaluation(name, test, validation, paths, metrics, calibration_bins, "calibrated")
    return metrics


def write_evaluation(
    name: str,
    test: pd.DataFrame,
    validation: pd.DataFrame,
    paths: EvaluationPaths,
    metrics: dict[str, Any],
    calibration_bins: int,
    calibrated_name: str,
) -> None:
    """The files of an evaluation of scored (and calibrated) test and validation tables: a model's or an ensemble's."""
    atomic_to_parquet(test, paths.predictions)
    atomic_to_parquet(validation, paths.validation_predictions)
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    write_plots(name, test, metrics["at_validation_threshold"]["threshold"], paths, "test")
    write_reliability(
        name, {"validation": validation, "test": test}, calibration_bins, paths.reliability, calibrated_name
    )
    with atomic_path(paths.submission) as temporary:
        submission_table(test).to_csv(temporary, index=False)
    log.info(
        "%s: roc_auc %s, log_loss %.4f (calibrated %.4f) on %d test videos",
        name,
        metrics.get("roc_auc"),
        metrics["log_loss"],
        metrics["calibrated"]["log_loss"],
        len(test),
    )


def evaluate_set(
    name: str,
    settings: Mapping[str, Any],
    set_name: str,
    *,
    model_path: str | Path,
    store_paths: Sequence[StorePaths],
    videos_path: str | Path,
    validation_predictions_path: str | Path,
    paths: SetEvaluationPaths,
    backend: str,
    aggregation: str,
    n_resamples: int,
    seed: int,
    batch_size: int,
    calibration_path: str | Path,
    calibration_bins: int,
) -> dict[str, Any]:
    """Score model ``name`` on every video of evaluation set ``set_name`` and write its evaluation.

    The decision threshold is the one chosen on the model's own validation split
    (``validation_predictions_path``, written by ``evaluate_model``), and the calibration the one
    fitted there (``calibration_path``): a set is never used to tune.
    """
    check_aggregation(aggregation)
    model, store = load_scoring(model_path, store_paths, backend)
    arch = settings["arch"]
    scored = score_store_videos(model, store, read_parquet(videos_path), aggregation, batch_size)
    calibration = load_calibration(calibration_path)
    scored = with_calibrated(scored, calibration)
    validation = read_parquet(validation_predictions_path)
    metrics = {"set": set_name, **scored_metrics(name, arch, aggregation, scored, validation, n_resamples, seed)}
    metrics |= calibrated_metrics(scored, calibration.method, calibration.describe(), calibration_bins)
    write_set_evaluation(name, set_name, scored, paths, metrics)
    return metrics


def write_set_evaluation(
    name: str, set_name: str, scored: pd.DataFrame, paths: SetEvaluationPaths, metrics: dict[str, Any]
) -> None:
    """The files of an evaluation on one set: a model's or an ensemble's."""
    atomic_to_parquet(scored, paths.predictions)
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    write_plots(name, scored, metrics["at_validation_threshold"]["threshold"], paths, f"set {set_name}")
    log.info(
        "%s on set %s: roc_auc %s, log_loss %.4f (calibrated %.4f) on %d videos",
        name,
        set_name,
        metrics.get("roc_auc"),
        metrics["log_loss"],
        metrics["calibrated"]["log_loss"],
        len(scored),
    )
