"""The DFDC face-batch format: file names, zip member names and ``metadata.csv``.

A face batch is ``deepfake-detection-faces-part-{i}-{j}.zip`` holding ``metadata.csv``
(``filename,split,original,label``) and one folder per video, named by the video's stem, with
face crops ``{n}.png`` for frame n and ``{n}_{k}.png`` for the k-th face (k >= 2) of that frame.
An optional fifth column, ``manipulation``, names the method that made each FAKE (empty for
REAL rows); real DFDC metadata has none, the demo generator writes it.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

import pandas as pd

log = logging.getLogger(__name__)

METADATA_MEMBER = "metadata.csv"
METADATA_COLUMNS = ("filename", "split", "original", "label")
MANIPULATION_COLUMN = "manipulation"  # optional: which method made a FAKE (not in real DFDC metadata)
LABELS = {"REAL": 0, "FAKE": 1}
# Fixed member times (the earliest a zip can hold): the same content gives byte-identical zips.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)

# `{video}/{n}.png` or `{video}/{n}_{k}.png`; video stems in DFDC are lowercase letters, but any
# name without a slash is accepted.
_FACE_MEMBER = re.compile(r"^(?P<video>[^/]+)/(?P<frame>\d+)(?:_(?P<face>\d+))?\.png$")


class FaceBatchError(ValueError):
    """Bad input in a face batch; the message names the file and the row or member."""


@dataclass(frozen=True)
class FaceMember:
    video_id: str
    frame_index: int
    face_index: int  # 1 for `{n}.png`, k for `{n}_{k}.png`


_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def is_unsafe_member(name: str) -> bool:
    """Absolute paths, drive letters, backslashes and `..` parts are never followed."""
    if name.startswith(("/", "\\")) or "\\" in name or _DRIVE_LETTER.match(name):
        return True
    return ".." in name.split("/")  # a plain split: PurePosixPath costs 40% of ingest on 100k members


def parse_face_member(name: str) -> FaceMember | None:
    """The video, frame and face a member holds, or None when it is not a face image."""
    match = _FACE_MEMBER.match(name)
    if match is None or _is_non_canonical(match):
        return None
    face = match.group("face")
    face_index = int(face) if face is not None else 1
    if face is not None and face_index < 2:
        return None  # `{n}_1.png` and `{n}_0.png` are not part of the format
    return FaceMember(match.group("video"), int(match.group("frame")), face_index)


def _is_non_canonical(match: re.Match) -> bool:
    """Leading zeros (`0002.png`, `2_02.png`) are not DFDC's naming: `0002.png` beside `2.png` would
    be a second frame 2."""
    return any(len(part) > 1 and part.startswith("0") for part in (match.group("frame"), match.group("face") or ""))


def not_a_face_detail(name: str) -> str:
    """Why ``parse_face_member`` rejects ``name``, for the skipped-member table and the log."""
    match = _FACE_MEMBER.match(name)
    if match is not None and _is_non_canonical(match):
        return "non-canonical frame name"
    return "not {video}/{n}.png or {video}/{n}_{k}.png (k >= 2)"


def face_member_name(video_id: str, frame_index: int, face_index: int = 1) -> str:
    suffix = "" if face_index == 1 else f"_{face_index}"
    return f"{video_id}/{frame_index}{suffix}.png"


def write_member(archive: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    """Add one member with fixed time, mode and creator system, so reruns give identical bytes."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = compression  # PNGs are compressed already: store them
    info.external_attr = 0o644 << 16
    info.create_system = 3  # unix, whatever the platform, for identical bytes everywhere
    archive.writestr(info, data)


def metadata_csv(rows: Iterable[Sequence[str]], columns: Sequence[str] = METADATA_COLUMNS) -> bytes:
    """``metadata.csv`` bytes: the header, then ``filename, split, original, label[, ...]`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def video_id_from_filename(filename: str) -> str:
    """``aaqaifqrwn.mp4`` -> ``aaqaifqrwn``."""
    return PurePosixPath(filename).stem


def read_metadata(data: bytes, source: str) -> pd.DataFrame:
    """Parse ``metadata.csv`` bytes into a checked table.

    Returns columns video_id, filename, split, label (1 FAKE / 0 REAL), original (video_id or
    None), manipulation (only when the file has that column: the name, or None where empty) and
    row (1-based data row, as a user counts lines after the header). ``source`` names the file in
    error messages.
    """
    try:
        text = data.decode("utf-8-sig")  # tolerate a BOM as well as Windows line endings
    except UnicodeDecodeError as error:
        raise FaceBatchError(f"{source}: metadata.csv is not UTF-8 text ({error})") from error
    table = parse_metadata_csv(text, source)
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in METADATA_COLUMNS if column not in table.columns]
    if missing:
        raise FaceBatchError(
            f"{source}: metadata.csv lacks column(s) {', '.join(missing)} (header must be {','.join(METADATA_COLUMNS)})"
        )
    table = table.apply(lambda column: column.str.strip())
    rows = pd.Series(range(1, len(table) + 1), index=table.index)

    labels = table["label"].str.upper()
    bad = ~labels.isin(list(LABELS))
    if bad.any():
        first = bad.idxmax()
        raise FaceBatchError(
            f"{source}: metadata.csv row {rows[first]} ({table.at[first, 'filename'] or 'no filename'}): "
            f"label {table.at[first, 'label']!r} is neither REAL nor FAKE"
        )
    empty = table["filename"] == ""
    if empty.any():
        raise FaceBatchError(f"{source}: metadata.csv row {rows[empty.idxmax()]}: empty filename")

    video_ids = table["filename"].map(video_id_from_filename)
    duplicated = video_ids.duplicated()
    if duplicated.any():
        first = duplicated.idxmax()
        raise FaceBatchError(f"{source}: metadata.csv row {rows[first]}: video {video_ids[first]} is listed twice")

    # object dtype keeps "no original" as None (pandas' string dtype would turn it into NaN)
    original = pd.Series(
        [video_id_from_filename(name) if name else None for name in table["original"]], index=table.index, dtype=object
    )
    # A REAL video has no original; one that names one is kept (as its own family) and noted.
    notes = pd.Series("", index=table.index, dtype=object)
    real_with_original = (labels == "REAL") & original.notna()
    for index in table.index[real_with_original]:
        notes[index] = (
            f"REAL row names original {table.at[index, 'original']} (ignored: a REAL video is its own family)"
        )
        log.warning("%s: metadata.csv row %d (%s): %s", source, rows[index], table.at[index, "filename"], notes[index])
    columns = {
        "video_id": video_ids,
        "filename": table["filename"],
        "split": table["split"],
        "label": labels.map(LABELS).astype("int8"),
        "original": original,
    }
    if MANIPULATION_COLUMN in table.columns:
        named = table[MANIPULATION_COLUMN] != ""
        real_named = named & (labels == "REAL")
        if real_named.any():
            first = real_named.idxmax()
            raise FaceBatchError(
                f"{source}: metadata.csv row {rows[first]} ({table.at[first, 'filename']}): a REAL video with "
                f"manipulation {table.at[first, MANIPULATION_COLUMN]!r} (leave it empty for REAL rows)"
            )
        columns[MANIPULATION_COLUMN] = pd.Series(
            [name if name else None for name in table[MANIPULATION_COLUMN]], index=table.index, dtype=object
        )
    columns["row"] = rows.astype("int32")
    columns["metadata_note"] = notes.astype(str)
    return pd.DataFrame(columns).reset_index(drop=True)


_PANDAS_LINE = re.compile(r"line (\d+)")


def parse_metadata_csv(text: str, source: str) -> pd.DataFrame:
    """``metadata.csv`` text as a table of strings; a file pandas cannot parse (a row with more
    fields than the header, no header at all) is a FaceBatchError naming ``source`` and the line.

    Shared by ingest and ``dfdetect predict`` (one input's bad metadata is that input's error).
    """
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as error:
        raise FaceBatchError(
            f"{source}: metadata.csv is empty (it needs the header {','.join(METADATA_COLUMNS)} and one row per video)"
        ) from error
    except pd.errors.ParserError as error:
        line = _PANDAS_LINE.search(str(error))
        where = f"line {line.group(1)}" if line else "a line"
        raise FaceBatchError(
            f"{source}: metadata.csv {where} cannot be parsed ({str(error).strip()}); "
            f"each line needs the fields {','.join(METADATA_COLUMNS)}"
        ) from error


def families(videos: pd.DataFrame) -> pd.Series:
    """Each video's family (video_id, label, original columns): a FAKE's family is its original
    (present in the data or not); a REAL is its own family."""
    is_fake_with_original = (videos["label"] == 1) & videos["original"].notna()
    return videos["original"].where(is_fake_with_original, videos["video_id"])


def class_balance(table: pd.DataFrame) -> dict[str, Any]:
    """Videos, FAKE and REAL counts, fake share and families of a video table (label, family)."""
    n_fake = int((table["label"] == 1).sum())
    return {
        "videos": int(len(table)),
        "fake": n_fake,
        "real": int(len(table) - n_fake),
        "fake_share": round(n_fake / len(table), 4) if len(table) else None,
        "families": int(table["family"].nunique()),
    }


def open_batch_zip(zip_path: str | Path) -> zipfile.ZipFile:
    """Open a face batch, turning zipfile's errors into one that names the file."""
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FaceBatchError(f"{zip_path}: not a readable zip file ({error}); the download may be truncated") from error


def read_member(archive: zipfile.ZipFile, member: str, zip_path: str | Path) -> bytes:
    """One member's bytes, turning zipfile's errors into one that names the file and member."""
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FaceBatchError(f"{zip_path}: {member} cannot be read ({error})") from error
