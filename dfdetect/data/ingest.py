"""Ingest: one face batch's zip -> frame manifest, video table and skipped-member table.

Only the zip's central directory and ``metadata.csv`` are read; no image is decoded and nothing
is extracted to disk.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from dfdetect.atomic import atomic_path
from dfdetect.corrupt import read_parquet
from dfdetect.data.facebatch import (
    MANIPULATION_COLUMN,
    METADATA_MEMBER,
    FaceBatchError,
    families,
    is_unsafe_member,
    not_a_face_detail,
    open_batch_zip,
    parse_face_member,
    read_member,
    read_metadata,
)

log = logging.getLogger(__name__)

FRAME_COLUMNS = ["batch", "video_id", "frame_index", "face_index", "member", "size"]
SKIPPED_COLUMNS = ["batch", "member", "reason", "detail"]


@dataclass
class BatchManifest:
    frames: pd.DataFrame  # one row per face image
    videos: pd.DataFrame  # one row per metadata row
    skipped: pd.DataFrame  # members seen but not taken, with the reason


def ingest_batch(zip_path: str | Path, batch: str) -> BatchManifest:
    with open_batch_zip(zip_path) as archive:
        return ingest_archive(archive, zip_path, batch)


def ingest_archive(archive: zipfile.ZipFile, zip_path: str | Path, batch: str) -> BatchManifest:
    """``ingest_batch`` on an open zip (a caller that goes on to read its faces opens it once)."""
    members = archive.infolist()
    if METADATA_MEMBER not in {info.filename for info in members}:
        raise FaceBatchError(f"{zip_path}: no {METADATA_MEMBER} in the zip (a face batch needs one at its root)")
    metadata = read_metadata(read_member(archive, METADATA_MEMBER, zip_path), source=f"{zip_path}")
    frames, skipped = _face_members(members, batch)
    log_skipped(zip_path, skipped)
    listed = set(metadata["video_id"])
    unlisted = ~frames["video_id"].isin(listed)
    if unlisted.any():
        for video_id, count in frames.loc[unlisted, "video_id"].value_counts().sort_index().items():
            log.warning("%s: folder %s/ (%d face files) has no metadata row; not a video", zip_path, video_id, count)
        skipped = pd.concat(
            [
                skipped,
                pd.DataFrame(
                    {
                        "batch": batch,
                        "member": frames.loc[unlisted, "member"],
                        "reason": "unlisted_folder",
                        "detail": "its folder has no metadata.csv row",
                    }
                ),
            ],
            ignore_index=True,
        )
        frames = frames.loc[~unlisted].reset_index(drop=True)
    videos = _video_table(metadata, frames, batch)
    skipped = skipped[SKIPPED_COLUMNS].astype({"batch": str, "member": str, "reason": str, "detail": str})
    return BatchManifest(frames=frames, videos=videos, skipped=skipped)


def log_skipped(zip_path: str | Path, skipped: pd.DataFrame, shown: int = 3) -> None:
    """One warning per reason, with the first few members: a zip with thousands of stray members
    says so in a line, and the skipped manifest lists every one."""
    for reason, group in skipped.groupby("reason", sort=True):
        first = group[["member", "detail"]].head(shown).itertuples(index=False)
        what = reason
        if group["detail"].nunique() == 1:  # one detail for all: say it once
            what = f"{reason} ({group['detail'].iloc[0]})"
            examples = ", ".join(repr(member) for member, _ in first)
        else:
            examples = ", ".join(f"{member!r} ({detail})" for member, detail in first)
        more = f" and {len(group) - shown} more" if len(group) > shown else ""
        log.warning("%s: ignoring %d member(s), %s: %s%s", zip_path, len(group), what, examples, more)


def _face_members(members: Iterable[zipfile.ZipInfo], batch: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows: list[tuple[str, int, int, str, int]] = []
    skipped: list[tuple[str, str, str]] = []
    for info in members:
        name = info.filename
        if name == METADATA_MEMBER or info.is_dir():
            continue
        if is_unsafe_member(name):
            skipped.append((name, "unsafe_path", "absolute path or '..'"))
            continue
        face = parse_face_member(name)
        if face is None:
            skipped.append((name, "not_a_face_image", not_a_face_detail(name)))
            continue
        rows.append((face.video_id, face.frame_index, face.face_index, name, info.file_size))
    frames = pd.DataFrame(rows, columns=FRAME_COLUMNS[1:])
    frames.insert(0, "batch", batch)
    frames = frames.astype(
        {"batch": str, "video_id": str, "frame_index": "int32", "face_index": "int16", "member": str, "size": "int64"}
    )
    # Numeric order, never the order the zip (or a directory listing) happens to give.
    frames = frames.sort_values(["video_id", "frame_index", "face_index"], kind="stable").reset_index(drop=True)
    skipped_table = pd.DataFrame(skipped, columns=["member", "reason", "detail"])
    skipped_table.insert(0, "batch", batch)
    return frames, skipped_table


def _video_table(metadata: pd.DataFrame, frames: pd.DataFrame, batch: str) -> pd.DataFrame:
    per_video = frames.groupby("video_id").size().rename("n_frames").to_frame()
    # n_multi_face_frames counts frames that hold an extra face, not the extra files.
    multi = frames.loc[frames["face_index"] > 1].groupby("video_id")["frame_index"].nunique()
    per_video["n_multi_face_frames"] = multi.reindex(per_video.index, fill_value=0)
    videos = metadata.join(per_video, on="video_id")
    videos["has_folder"] = videos["n_frames"].notna()
    videos[["n_frames", "n_multi_face_frames"]] = videos[["n_frames", "n_multi_face_frames"]].fillna(0)
    videos["family"] = families(videos)
    videos.insert(0, "batch", batch)
    columns = [
        "batch",
        "video_id",
        "filename",
        "label",
        "original",
        "family",
        "split",
        "n_frames",
        "n_multi_face_frames",
        "has_folder",
        "row",
        "metadata_note",
    ]
    if MANIPULATION_COLUMN in videos.columns:  # demo batches say which method made each fake; DFDC does not
        columns.insert(columns.index("family") + 1, MANIPULATION_COLUMN)
    return videos[columns].astype(
        {
            "batch": str,
            "video_id": str,
            "filename": str,
            "family": str,
            "split": str,
            "n_frames": "int32",
            "n_multi_face_frames": "int32",
            "has_folder": bool,
            "metadata_note": str,
        }
    )


def write_batch_manifest(
    manifest: BatchManifest, frames_path: str | Path, videos_path: str | Path, skipped_path: str | Path
) -> None:
    for table, path in (
        (manifest.frames, frames_path),
        (manifest.videos, videos_path),
        (manifest.skipped, skipped_path),
    ):
        with atomic_path(path, suffix=".parquet") as temporary:
            table.to_parquet(temporary, index=False)


def combine_video_tables(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All batches' video tables in one; a video id in two batches is an error naming both."""
    tables = [read_parquet(path) for path in paths]
    if not tables:
        raise FaceBatchError("no batches to combine: no face-batch zips were found")
    videos = pd.concat(tables, ignore_index=True)
    duplicated = videos["video_id"].duplicated(keep=False)
    if duplicated.any():
        first_id = videos.loc[duplicated, "video_id"].iloc[0]
        batches = videos.loc[videos["video_id"] == first_id, "batch"].tolist()
        raise FaceBatchError(
            f"video {first_id} appears in batches {' and '.join(batches)} "
            f"({duplicated.sum()} rows share ids across batches); each video must be in one batch"
        )
    return videos


def summarize_videos(videos: pd.DataFrame) -> str:
    n_fake = int(videos["label"].sum())
    n_videos = len(videos)
    return (
        f"{n_videos} videos in {videos['batch'].nunique()} batch(es): {n_fake} FAKE "
        f"({n_fake / max(n_videos, 1):.1%}), {n_videos - n_fake} REAL; "
        f"{int(videos['n_frames'].sum())} face files; {int((~videos['has_folder']).sum())} without a folder; "
        f"{videos['family'].nunique()} families"
    )
