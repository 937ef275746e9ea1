"""Score a trained model on the validation and test videos, and write its evaluation.

Scores come from the one scoring path (``dfdetect.evaluation.scoring``): single-frame models score every
filled slot of a video and the scores are aggregated into one video score (mean, median or the
DFDC winner's confident mean), with the middle frame's score alone (the study's setting) kept
beside it; ``td_lstm`` scores the whole clip. Metrics come from probabilities
(``dfdetect.evaluation.metrics``); the decision threshold is chosen on validation.

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
from dfdetect.evaluation.metrics import evaluation_metrics, per_manipulation_auc, probability_metrics
from dfdetect.evaluation.plots import plot_confusion_matrix, plot_precision_recall, plot_roc, plot_score_histograms
from dfdetect.evaluation.scoring import PREDICTION_COLUMNS, check_aggregation, score_store_videos
from dfdetect.layout import EVALUATION_FILES, SET_EVALUATION_FILES, RulePaths
from dfdetect.training.backend import select_backend

log = logging.getLogger(__name__)

__all__ = [
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
    """The competition's format: filename, label = probability of FAKE."""
    return pd.DataFrame({"filename": predictions["video_id"] + ".mp4", "label": predictions["p_fake"].round(6)})


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
        thresholds={"threshold 0.5": 0.5, "validation threshold": threshold},
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
) -> dict[str, Any]:
    """Write predictions, metrics.json, plots and submission.csv for model ``name`` to ``paths``.

    ``aggregation``, ``n_resamples``, ``seed`` and ``batch_size`` are the config's ``evaluation``
    section (its defaults are the schema's).
    """
    check_aggregation(aggregation)
    model, store = load_scoring(model_path, store_paths, backend)
    arch = settings["arch"]
    test = score_store_videos(model, store, read_parquet(test_path), aggregation, batch_size)
    validation = score_store_videos(model, store, read_parquet(validation_path), aggregation, batch_size)
    atomic_to_parquet(test, paths.predictions)
    atomic_to_parquet(validation, paths.validation_predictions)

    metrics = scored_metrics(name, arch, aggregation, test, validation, n_resamples, seed)
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    write_plots(name, test, metrics["at_validation_threshold"]["threshold"], paths, "test")
    with atomic_path(paths.submission) as temporary:
        submission_table(test).to_csv(temporary, index=False)
    log.info(
        "%s: roc_auc %s, log_loss %.4f on %d test videos", name, metrics.get("roc_auc"), metrics["log_loss"], len(test)
    )
    return metrics


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
) -> dict[str, Any]:
    """Score model ``name`` on every video of evaluation set ``set_name`` and write its evaluation.

    The decision threshold is the one chosen on the model's own validation split
    (``validation_predictions_path``, written by ``evaluate_model``): a set is never used to tune.
    """
    check_aggregation(aggregation)
    model, store = load_scoring(model_path, store_paths, backend)
    arch = settings["arch"]
    scored = score_store_videos(model, store, read_parquet(videos_path), aggregation, batch_size)
    atomic_to_parquet(scored, paths.predictions)
    validation = read_parquet(validation_predictions_path)
    metrics = {"set": set_name, **scored_metrics(name, arch, aggregation, scored, validation, n_resamples, seed)}
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    write_plots(name, scored, metrics["at_validation_threshold"]["threshold"], paths, f"set {set_name}")
    log.info(
        "%s on set %s: roc_auc %s, log_loss %.4f on %d videos",
        name,
        set_name,
        metrics.get("roc_auc"),
        metrics["log_loss"],
        len(scored),
    )
    return metrics
