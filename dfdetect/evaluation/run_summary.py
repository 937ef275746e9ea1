"""The end-of-run summary: videos ingested, kept, dropped by reason and unreadable, and the zip
members skipped (``report/run_summary.md``, printed when a run ends)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from dfdetect.atomic import atomic_write_text
from dfdetect.evaluation.markdown import markdown_table, text


def run_summary(
    videos: pd.DataFrame, cleaned: pd.DataFrame, store_indexes: Iterable[pd.DataFrame], skipped: Iterable[pd.DataFrame]
) -> dict[str, Any]:
    """Videos ingested / kept / dropped by reason / unreadable, and zip members skipped by reason.

    ``videos``: manifests/videos.parquet; ``cleaned``: clean/videos.parquet; the store indexes
    (store/{batch}.index.parquet) and skipped-member tables (manifests/skipped/{batch}.parquet).
    """
    index = pd.concat(list(store_indexes), ignore_index=True)
    skipped_members = pd.concat(list(skipped), ignore_index=True)
    kept_ids = set(cleaned.loc[cleaned["keep"].astype(bool), "video_id"])
    unreadable = index[index["video_id"].isin(kept_ids) & (index["status"] != "ok")]
    dropped = cleaned.loc[~cleaned["keep"].astype(bool), "drop_reason"].fillna("unknown").value_counts()
    if "detail" not in skipped_members.columns:
        skipped_members["detail"] = ""
    by_reason = (
        skipped_members.assign(detail=skipped_members["detail"].fillna(""))
        .groupby(["reason", "detail"])
        .size()
        .sort_index()
    )
    notes = videos["metadata_note"] if "metadata_note" in videos.columns else pd.Series([], dtype=str)
    return {
        "videos_ingested": int(len(videos)),
        "videos_without_folder": int((~videos["has_folder"].astype(bool)).sum()) if "has_folder" in videos else 0,
        "videos_kept_by_cleaning": int(len(kept_ids)),
        "videos_dropped": {str(reason): int(count) for reason, count in dropped.items()},
        "videos_unreadable": {str(status): int(count) for status, count in unreadable["status"].value_counts().items()},
        "videos_usable": int(len(kept_ids) - len(unreadable)),
        "metadata_notes": int((notes.fillna("") != "").sum()),
        "members_skipped": [
            {"reason": str(reason), "detail": str(detail), "members": int(count)}
            for (reason, detail), count in by_reason.items()
        ],
    }


def run_summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as two markdown tables (also what the workflow prints at the end of a run)."""
    rows = [
        ["videos ingested (metadata rows)", text(summary["videos_ingested"])],
        ["of which without a face folder", text(summary["videos_without_folder"])],
        ["of which with a metadata note (manifests/videos: metadata_note)", text(summary["metadata_notes"])],
        ["kept by cleaning", text(summary["videos_kept_by_cleaning"])],
    ]
    rows += [[f"dropped by cleaning: {reason}", text(count)] for reason, count in summary["videos_dropped"].items()]
    rows += [
        [f"kept, but excluded when packing: {status}", text(count)]
        for status, count in summary["videos_unreadable"].items()
    ]
    rows += [["usable for the splits", text(summary["videos_usable"])]]
    videos = markdown_table(["videos", "count"], rows)
    skipped = summary["members_skipped"]
    members = markdown_table(
        ["zip members skipped (manifests/skipped)", "detail", "members"],
        [[entry["reason"], entry["detail"] or "–", text(entry["members"])] for entry in skipped]
        or [["(none)", "–", "0"]],
    )
    return videos + "\n\n" + members


def write_run_summary(summary: dict[str, Any], path: str | Path) -> str:
    """``report/run_summary.md``; returns its text (the workflow prints it when the run ends)."""
    content = "# dfdetect run summary\n\n" + run_summary_markdown(summary) + "\n"
    atomic_write_text(path, content)
    return content
