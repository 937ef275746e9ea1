"""Robustness curves: a model's test split scored under DeeperForensics-1.0's perturbations.

Every perturbation of ``dfdetect.evaluation.perturb`` at each of its five levels is applied to the face
crops of the test videos as the frame store holds them (seeded per video, so a video's
perturbed frames do not depend on what else is scored), and the videos are scored through the
evaluation's own path (``dfdetect.evaluation.scoring.score_store_videos``: same frames, same aggregation).
Level 0 is the clean evaluation. Writes ``robustness.csv`` (perturbation, level, roc_auc,
log_loss, n) and ``robustness.png`` (AUC against level, a line per perturbation, clean AUC as
reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_path
from dfdetect.corrupt import read_parquet
from dfdetect.data.store import StorePaths
from dfdetect.evaluation.metrics import ROBUSTNESS_COLUMNS, mean_perturbed_auc, robustness_record
from dfdetect.evaluation.perturb import conditions, perturb_frames, video_seed
from dfdetect.evaluation.scoring import check_aggregation, score_store_videos
from dfdetect.layout import ROBUSTNESS_FILES, RulePaths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RobustnessPaths(RulePaths):
    """Every file the robustness rule writes; the field names are its output names."""

    table: Path
    plot: Path

    FILES: ClassVar[Mapping[str, str]] = ROBUSTNESS_FILES


def perturbation_transform(perturbation: str, level: int, seed: int):
    """A ``scoring.FrameTransform`` applying one perturbation level, seeded per video."""

    def transform(video_id: str, frames: np.ndarray) -> np.ndarray:
        return perturb_frames(perturbation, level, frames, video_seed(video_id, seed))

    return transform


def robustness_table(
    model: Any,
    store: Any,
    videos: pd.DataFrame,
    aggregation: str,
    batch_size: int,
    seed: int,
    levels: Sequence[tuple[str, int]] | None = None,
) -> pd.DataFrame:
    """One row per (perturbation, level), level 0 (clean) first; columns ``ROBUSTNESS_COLUMNS``."""
    labels = videos["label"].to_numpy()
    clean = score_store_videos(model, store, videos, aggregation, batch_size)
    rows = [robustness_record("none", 0, labels, clean["p_fake"].to_numpy())]
    for perturbation, level in levels if levels is not None else conditions():
        scored = score_store_videos(
            model, store, videos, aggregation, batch_size, transform=perturbation_transform(perturbation, level, seed)
        )
        rows.append(robustness_record(perturbation, level, labels, scored["p_fake"].to_numpy()))
        log.info("%s level %d: roc_auc %s", perturbation, level, rows[-1]["roc_auc"])
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def write_robustness(name: str, table: pd.DataFrame, paths: RobustnessPaths) -> None:
    from dfdetect.evaluation.plots import plot_robustness

    with atomic_path(paths.table) as temporary:
        table.to_csv(temporary, index=False)
    clean_auc = table.loc[table["level"] == 0, "roc_auc"].iloc[0]
    plot_robustness(
        table[table["level"] > 0],
        paths.plot,
        f"{name}: test ROC AUC under perturbations",
        clean_auc=None if clean_auc is None or pd.isna(clean_auc) else float(clean_auc),
    )


def evaluate_robustness(
    name: str,
    *,
    model_path: str | Path,
    store_paths: Sequence[StorePaths],
    test_path: str | Path,
    paths: RobustnessPaths,
    backend: str,
    aggregation: str,
    batch_size: int,
    seed: int,
) -> pd.DataFrame:
    """Score model ``name``'s test split under every perturbation level and write the curves."""
    from dfdetect.evaluation.evaluate import load_scoring

    check_aggregation(aggregation)
    model, store = load_scoring(model_path, store_paths, backend)
    table = robustness_table(model, store, read_parquet(test_path), aggregation, batch_size, seed)
    write_robustness(name, table, paths)
    log.info(
        "%s: mean perturbed ROC AUC %s over %d conditions",
        name,
        mean_perturbed_auc(table),
        int((table["level"] > 0).sum()),
    )
    return table
