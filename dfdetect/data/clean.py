"""Outlier removal as a table: which videos to keep, and why the others are dropped.

The study dropped videos with fewer than 200 or more than 400 face files (too few frames, or a
second actor), then dropped each fake whose original had been dropped. Nothing is moved or
deleted: the decision is a column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_to_parquet, atomic_write_text
from dfdetect.data.facebatch import MANIPULATION_COLUMN, class_balance

TOO_FEW_FRAMES = "too_few_frames"
TOO_MANY_FRAMES = "too_many_frames"
ORIGINAL_DROPPED = "original_dropped"
DROP_REASONS = (TOO_FEW_FRAMES, TOO_MANY_FRAMES, ORIGINAL_DROPPED)
CLEAN_COLUMNS = ["batch", "video_id", "label", "original", "family", "n_frames", "keep", "drop_reason"]


def frame_count_reason(n_frames: pd.Series, min_frames: int, max_frames: int) -> pd.Series:
    """``too_few_frames`` / ``too_many_frames`` / "" per video; both bounds are inclusive."""
    reason = np.where(n_frames < min_frames, TOO_FEW_FRAMES, np.where(n_frames > max_frames, TOO_MANY_FRAMES, ""))
    return pd.Series(reason, index=n_frames.index, dtype=str)


def clean_videos(videos: pd.DataFrame, min_frames: int, max_frames: int) -> pd.DataFrame:
    """One row per metadata row with ``keep`` and ``drop_reason``.

    A FAKE whose original is present and dropped is dropped as ``original_dropped``; a FAKE
    whose original is absent from the data is judged on its own frames.
    """
    table = videos.copy()
    table["drop_reason"] = frame_count_reason(table["n_frames"], min_frames, max_frames)
    dropped_ids = set(table.loc[table["drop_reason"] != "", "video_id"])
    orphaned = (table["label"] == 1) & table["original"].isin(dropped_ids) & (table["drop_reason"] == "")
    table.loc[orphaned, "drop_reason"] = ORIGINAL_DROPPED
    table["keep"] = table["drop_reason"] == ""
    table["drop_reason"] = table["drop_reason"].replace("", None)
    return table[clean_columns(table)].reset_index(drop=True)


def clean_columns(videos: pd.DataFrame) -> list[str]:
    """CLEAN_COLUMNS, plus ``manipulation`` after ``family`` when the video table has it."""
    columns = list(CLEAN_COLUMNS)
    if MANIPULATION_COLUMN in videos.columns:
        columns.insert(columns.index("family") + 1, MANIPULATION_COLUMN)
    return columns


def clean_summary(cleaned: pd.DataFrame) -> dict[str, Any]:
    counts = cleaned["drop_reason"].value_counts()
    return {
        "before": class_balance(cleaned),
        "after": class_balance(cleaned[cleaned["keep"]]),
        "dropped": {reason: int(counts.get(reason, 0)) for reason in DROP_REASONS},
    }


def write_clean(cleaned: pd.DataFrame, table_path: str | Path, summary_path: str | Path) -> dict[str, Any]:
    atomic_to_parquet(cleaned, table_path)
    summary = clean_summary(cleaned)
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary
