"""30-frame reduction: one single-face frame per slot of ``step`` frame indices.

For slot s (0 .. count-1) the chosen frame is the smallest index f in [s*step, (s+1)*step) such
that ``{f}.png`` exists and the frame has no extra face (``{f}_k.png``); when there is none the
slot stays empty. Order is numeric (the study took ``os.listdir()`` order, which is arbitrary).

Selection runs per batch on the videos that pass the frame-count bounds (a per-video decision),
so that a changed batch re-selects and repacks alone; the family propagation of ``clean`` is
applied when the batches are combined into ``reduced/frames.parquet``.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from dfdetect.data.clean import frame_count_reason

SELECTION_COLUMNS = ["batch", "video_id", "slot", "frame_index", "member"]


def select_frames(frames: pd.DataFrame, video_ids: Iterable[str], step: int, count: int) -> pd.DataFrame:
    """The chosen frame per (video, slot) for ``video_ids``; empty slots have no row."""
    wanted = frames[frames["video_id"].isin(set(video_ids))]
    extra_faces = wanted.loc[wanted["face_index"] > 1, ["video_id", "frame_index"]].drop_duplicates()
    first_faces = wanted[wanted["face_index"] == 1]
    single = first_faces.merge(extra_faces, on=["video_id", "frame_index"], how="left", indicator=True)
    single = single[single["_merge"] == "left_only"].drop(columns="_merge")
    single = single.assign(slot=(single["frame_index"] // step).astype("int32"))
    single = single[single["slot"] < count]
    chosen = (
        single.sort_values(["video_id", "frame_index"], kind="stable").groupby(["video_id", "slot"], sort=False).head(1)
    )
    chosen = chosen.sort_values(["video_id", "slot"], kind="stable").reset_index(drop=True)
    return chosen[SELECTION_COLUMNS].astype({"slot": "int16", "frame_index": "int32"})


def select_batch_frames(
    frames: pd.DataFrame, videos: pd.DataFrame, step: int, count: int, min_frames: int, max_frames: int
) -> pd.DataFrame:
    """Selection for one batch: the videos inside the frame-count bounds."""
    in_bounds = frame_count_reason(videos["n_frames"], min_frames, max_frames) == ""
    return select_frames(frames, videos.loc[in_bounds, "video_id"], step, count)


def combine_selections(selections: Iterable[pd.DataFrame], cleaned: pd.DataFrame) -> pd.DataFrame:
    """``reduced/frames.parquet``: the per-batch selections of the videos ``clean`` keeps."""
    kept = set(cleaned.loc[cleaned["keep"], "video_id"])
    combined = pd.concat(list(selections), ignore_index=True)
    return combined[combined["video_id"].isin(kept)].reset_index(drop=True)
