"""Train / validation / test tables, grouped by family and stratified by label.

A fake and its original (and the original's other fakes) share pixels, so a family split across
sets leaks. scikit-learn's ``StratifiedGroupKFold`` keeps each family in one fold and balances the
label share across folds as far as families allow; the test set is the union of the first k of
n folds with k/n closest to ``split.test``, and validation is split from the rest the same way.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from dfdetect.atomic import atomic_to_parquet, atomic_write_text
from dfdetect.data.facebatch import MANIPULATION_COLUMN, class_balance
from dfdetect.data.store import STATUS_OK

SPLIT_NAMES = ("train", "validation", "test")
SPLIT_COLUMNS = ["video_id", "label", "family"]
MAX_FOLDS = 20


class SplitError(ValueError):
    """A split that cannot serve training or evaluation (too few families, a missing class)."""


def fold_plan(share: float, n_groups: int) -> tuple[int, int]:
    """(k, n): k of n equal folds approximate ``share``, with n at most the number of groups."""
    limit = max(2, min(MAX_FOLDS, n_groups))
    fraction = Fraction(share).limit_denominator(limit)
    k, n = fraction.numerator, fraction.denominator
    if k == 0:
        k, n = 1, limit
    if n < 2:
        n = 2
    return k, n


def grouped_holdout(table: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``table`` (label, family) into (rest, held out) with about ``share`` held out."""
    n_groups = table["family"].nunique()
    if n_groups < 2:
        raise SplitError(f"only {n_groups} family: cannot hold out a share of {share} without splitting a family")
    k, n = fold_plan(share, n_groups)
    folds = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
    held_out = np.zeros(len(table), dtype=bool)
    for fold, (_, fold_rows) in enumerate(folds.split(table, table["label"], groups=table["family"])):
        if fold >= k:
            break
        held_out[fold_rows] = True
    return table[~held_out], table[held_out]


def split_columns(videos: pd.DataFrame) -> list[str]:
    """SPLIT_COLUMNS, plus ``manipulation`` when the table has it (demo data; DFDC has none)."""
    return SPLIT_COLUMNS + ([MANIPULATION_COLUMN] if MANIPULATION_COLUMN in videos.columns else [])


def packable_videos(cleaned: pd.DataFrame, store_index: pd.DataFrame) -> pd.DataFrame:
    """Kept videos whose frames made it into the store."""
    usable = set(store_index.loc[store_index["status"] == STATUS_OK, "video_id"])
    videos = cleaned[cleaned["keep"] & cleaned["video_id"].isin(usable)]
    return videos[split_columns(videos)].sort_values("video_id").reset_index(drop=True)


def split_videos(videos: pd.DataFrame, test: float, validation: float, seed: int) -> dict[str, pd.DataFrame]:
    """{"train", "validation", "test"} tables; deterministic for ``seed``."""
    videos = videos[split_columns(videos)].sort_values("video_id").reset_index(drop=True)
    rest, test_set = grouped_holdout(videos, test, seed)
    train_set, validation_set = grouped_holdout(rest.reset_index(drop=True), validation, seed)
    sets = {"train": train_set, "validation": validation_set, "test": test_set}
    for name, table in sets.items():
        present = set(table["label"].unique())
        if present != {0, 1}:
            have = {0: "REAL", 1: "FAKE"}
            lacking = [have[label] for label in (0, 1) if label not in present]
            raise SplitError(
                f"the {name} set ({len(table)} videos, {table['family'].nunique()} families) has no "
                f"{' or '.join(lacking)} video; add data, or change split.test/split.validation/split.seed"
            )
    return {name: table.reset_index(drop=True) for name, table in sets.items()}


def split_summary(sets: dict[str, pd.DataFrame], seed: int) -> dict[str, Any]:
    total = sum(len(table) for table in sets.values())
    summary: dict[str, Any] = {"seed": seed, "videos": total}
    for name, table in sets.items():
        summary[name] = class_balance(table) | {"share": round(len(table) / total, 4)}
    return summary


def write_splits(
    sets: dict[str, pd.DataFrame], paths: dict[str, str | Path], summary_path: str | Path, seed: int
) -> dict[str, Any]:
    for name, table in sets.items():
        atomic_to_parquet(table, paths[name])
    summary = split_summary(sets, seed)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary
