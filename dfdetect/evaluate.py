"""Score a trained model on the validation and test videos, and write its evaluation.

Scores come from the one scoring path (``dfdetect.scoring``): single-frame models score every
filled slot of a video and the scores are aggregated into one video score (mean, median or the
DFDC winner's confident mean), with the middle frame's score alone (the study's setting) kept
beside it; ``td_lstm`` scores the whole clip. Metrics come from probabilities
(``dfdetect.metrics``); the decision threshold is chosen on validation.

The files written are exactly those of an ``EvaluationPaths``, which the evaluate rule builds
from its declared outputs. Keras is imported inside the functions, after the backend is selected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from dfdetect.atomic import atomic_path, atomic_write_text
from dfdetect.backend import select_backend
from dfdetect.layout import EVALUATION_FILES, paths_from_mapping, paths_in_folder
from dfdetect.metrics import evaluation_metrics, probability_metrics
from dfdetect.plots import plot_confusion_matrix, plot_precision_recall, plot_roc, plot_score_histograms
from dfdetect.scoring import PREDICTION_COLUMNS, check_aggregation, score_store_videos

log = logging.getLogger(__name__)

__all__ = ["PREDICTION_COLUMNS", "EvaluationPaths", "evaluate_model", "submission_table"]


@dataclass(frozen=True)
class EvaluationPaths:
    """Every file evaluate writes; the field names are the evaluate rule's output names."""

    predictions: Path
    validation_predictions: Path
    metrics: Path
    roc: Path
    precision_recall: Path
    confusion: Path
    scores: Path
    submission: Path

    @classmethod
    def from_mapping(cls, paths: Mapping[str, str | Path]) -> "EvaluationPaths":
        """From a rule's named outputs (``dict(snakemake.output.items())``); names every missing one."""
        return paths_from_mapping(cls, paths)

    @classmethod
    def in_folder(cls, folder: str | Path) -> "EvaluationPaths":
        """The workflow's file names (``eval/{model}/``) in ``folder``, for runs without Snakemake."""
        return paths_in_folder(cls, folder, EVALUATION_FILES)


def write_parquet(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        table.to_parquet(temporary, index=False)


def submission_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """The competition's format: filename, label = probability of FAKE."""
    return pd.DataFrame({"filename": predictions["video_id"] + ".mp4", "label": predictions["p_fake"].round(6)})


def evaluate_model(
    name: str,
    settings: Mapping[str, Any],
    *,
    model_path: str | Path,
    store_prefixes: Sequence[str | Path],
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
    select_backend(backend)
    from dfdetect.models import load_model
    from dfdetect.store import FrameStore

    model = load_model(model_path)
    store = FrameStore(store_prefixes)
    arch = settings["arch"]
    test = score_store_videos(model, store, pd.read_parquet(test_path), aggregation, batch_size)
    validation = score_store_videos(model, store, pd.read_parquet(validation_path), aggregation, batch_size)
    write_parquet(test, paths.predictions)
    write_parquet(validation, paths.validation_predictions)

    metrics = evaluation_metrics(test, validation, n_resamples=n_resamples, seed=seed)
    metrics = {"model": name, "arch": arch, "aggregation": aggregation if arch != "td_lstm" else "clip", **metrics}
    if arch != "td_lstm":
        # The study's setting, for comparison: one frame per video, no aggregation.
        metrics["middle_frame"] = probability_metrics(test["label"], test["p_fake_middle"])
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")

    labels, scores = test["label"].to_numpy(), test["p_fake"].to_numpy()
    threshold = metrics["at_validation_threshold"]["threshold"]
    plot_roc(labels, scores, paths.roc, f"{name}: ROC (test, n={len(test)})")
    plot_precision_recall(labels, scores, paths.precision_recall, f"{name}: precision-recall (test)")
    plot_confusion_matrix(labels, scores, threshold, paths.confusion, f"{name}: test at validation threshold {threshold:.2f}")
    plot_score_histograms(labels, scores, paths.scores, f"{name}: video scores (test)",
                          thresholds={"threshold 0.5": 0.5, "validation threshold": threshold})
    with atomic_path(paths.submission) as temporary:
        submission_table(test).to_csv(temporary, index=False)
    log.info("%s: roc_auc %s, log_loss %.4f on %d test videos", name, metrics.get("roc_auc"), metrics["log_loss"], len(test))
    return metrics

