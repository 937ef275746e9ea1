"""Score a trained model on the validation and test videos, and write its evaluation.

Single-frame models score every filled slot of a video and the scores are aggregated into one
video score (mean, median or the DFDC winner's confident mean); the middle frame's score alone
(the study's setting) is kept beside it. ``td_lstm`` scores the whole clip. Metrics come from
probabilities (``dfdetect.metrics``); the decision threshold is chosen on validation.

Keras is imported inside the functions, after the backend has been selected.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_path, atomic_to_parquet, atomic_write_text
from dfdetect.backend import select_backend
from dfdetect.metrics import (
    AGGREGATIONS,
    aggregate_frame_scores,
    evaluation_metrics,
    plot_confusion_matrix,
    plot_precision_recall,
    plot_roc,
    plot_score_histograms,
    probability_metrics,
)

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["video_id", "family", "label", "p_fake", "p_fake_middle", "n_frames_scored"]


# What evaluate writes into eval/{model}/ (the rule declares the same names).
EVALUATION_FILES = {
    "predictions": "predictions.parquet",
    "validation_predictions": "validation_predictions.parquet",
    "metrics": "metrics.json",
    "roc": "roc.png",
    "precision_recall": "precision_recall.png",
    "confusion": "confusion_matrix.png",
    "scores": "score_histograms.png",
    "submission": "submission.csv",
}


def frame_score_matrix(samples: pd.DataFrame, scores: np.ndarray, video_ids: Sequence[str], n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample scores (video_id, slot) -> (videos, slots) scores and mask, rows in ``video_ids`` order."""
    row_of = {video_id: row for row, video_id in enumerate(video_ids)}
    matrix = np.zeros((len(video_ids), n_slots), dtype=np.float64)
    mask = np.zeros((len(video_ids), n_slots), dtype=bool)
    rows = samples["video_id"].map(row_of).to_numpy()
    slots = samples["slot"].to_numpy()
    matrix[rows, slots] = scores
    mask[rows, slots] = True
    return matrix, mask


def middle_scores(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The score of the frame the study would have used: the filled slot nearest the middle."""
    from dfdetect.loader import nearest_filled_slot

    middle = mask.shape[1] // 2
    slots = np.array([nearest_filled_slot(row, middle) for row in mask])
    picked = matrix[np.arange(len(matrix)), np.maximum(slots, 0)]
    return np.where(slots >= 0, picked, np.nan)


def score_videos(model, store, videos: pd.DataFrame, arch: str, aggregation: str = "mean",
                 batch_size: int = 64) -> pd.DataFrame:
    """One row per video: p_fake (video score), p_fake_middle (single-frame models), n_frames_scored."""
    from dfdetect.loader import FrameDataset

    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")
    video_ids = videos["video_id"].tolist()
    if arch == "td_lstm":
        dataset = FrameDataset(store, videos, mode="clip", batch_size=batch_size)
        p_fake = model.predict(dataset, verbose=0).reshape(-1).astype(np.float64)
        n_scored = store.index.set_index("video_id").loc[video_ids, "n_filled"].to_numpy()  # no frame reads
        p_middle = np.full(len(video_ids), np.nan)
    else:
        dataset = FrameDataset(store, videos, mode="all", batch_size=batch_size)
        frame_scores = model.predict(dataset, verbose=0).reshape(-1).astype(np.float64)
        matrix, mask = frame_score_matrix(dataset.samples, frame_scores, video_ids, store.n_slots)
        p_fake = aggregate_frame_scores(matrix, mask, aggregation)
        p_middle = middle_scores(matrix, mask)
        n_scored = mask.sum(axis=1)
    table = videos[["video_id", "family", "label"]].reset_index(drop=True).copy()
    table["p_fake"] = p_fake
    table["p_fake_middle"] = p_middle
    table["n_frames_scored"] = n_scored.astype("int32")
    return table[PREDICTION_COLUMNS]


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
    out_dir: str | Path,
    backend: str = "tensorflow",
    aggregation: str = "mean",
    n_resamples: int = 1000,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Write predictions, metrics.json, plots and submission.csv for model ``name``."""
    select_backend(backend)
    from dfdetect.models import load_model
    from dfdetect.store import FrameStore

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / file for key, file in EVALUATION_FILES.items()}
    model = load_model(model_path)
    store = FrameStore(store_prefixes)
    arch = settings["arch"]
    test = score_videos(model, store, pd.read_parquet(test_path), arch, aggregation, batch_size)
    validation = score_videos(model, store, pd.read_parquet(validation_path), arch, aggregation, batch_size)
    atomic_to_parquet(test, paths["predictions"])
    atomic_to_parquet(validation, paths["validation_predictions"])

    metrics = evaluation_metrics(test, validation, n_resamples=n_resamples, seed=seed)
    metrics = {"model": name, "arch": arch, "aggregation": aggregation if arch != "td_lstm" else "clip", **metrics}
    if arch != "td_lstm":
        # The study's setting, for comparison: one frame per video, no aggregation.
        metrics["middle_frame"] = probability_metrics(test["label"], test["p_fake_middle"])
    atomic_write_text(paths["metrics"], json.dumps(metrics, indent=2) + "\n")

    labels, scores = test["label"].to_numpy(), test["p_fake"].to_numpy()
    threshold = metrics["at_validation_threshold"]["threshold"]
    plot_roc(labels, scores, paths["roc"], f"{name}: ROC (test, n={len(test)})")
    plot_precision_recall(labels, scores, paths["precision_recall"], f"{name}: precision-recall (test)")
    plot_confusion_matrix(labels, scores, threshold, paths["confusion"], f"{name}: test at validation threshold {threshold:.2f}")
    plot_score_histograms(labels, scores, paths["scores"], f"{name}: video scores (test)",
                          thresholds={"threshold 0.5": 0.5, "validation threshold": threshold})
    with atomic_path(paths["submission"], suffix=".csv") as temporary:
        submission_table(test).to_csv(temporary, index=False)
    log.info("%s: roc_auc %s, log_loss %.4f on %d test videos", name, metrics.get("roc_auc"), metrics["log_loss"], len(test))
    return metrics

