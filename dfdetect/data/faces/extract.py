"""Raw DFDC videos -> MTCNN face crops, written in exactly the face-batch layout.

A raw part ``dfdc_train_part_{N}.zip`` (mp4 members and a ``metadata.json``, possibly in a
sub-folder) becomes ``deepfake-detection-faces-part-{N}-0.zip``: ``metadata.csv`` plus one folder
per video with ``{n}.png`` (frame n, 0-based source frame number) and ``{n}_2.png``, ... for the
further faces of that frame. Faces in a frame are ordered largest box first (ties: leftmost),
so ``{n}.png`` is the most prominent face. Crops are square: the detector box grown by
``margin`` of its size, squared on its longer side, shifted inside the frame where it fits
(black padding only where the square is larger than the frame), resized to ``crop_size``.

A video that cannot be decoded or shows no face keeps its ``metadata.csv`` row (no folder) and
is listed with its reason in ``{out}.report.csv`` next to the output zip; the part goes on.

Frames come from ``decode``, faces from ``detect``; importing this module is cheap (mtcnn and
TensorFlow are imported only by ``detect.load_detector``).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.data.facebatch import (
    LABELS,
    METADATA_MEMBER,
    FaceBatchError,
    face_member_name,
    metadata_csv,
    open_batch_zip,
    read_member,
    video_id_from_filename,
    write_member,
)
from dfdetect.data.faces.decode import VideoDecodeError, decoded_frames, is_sampled, read_ahead
from dfdetect.data.faces.detect import Face, FaceDetector, FaceSettings, crop_face, detect_faces, load_detector
from dfdetect.data.png import encode_pngs

log = logging.getLogger(__name__)


RAW_METADATA_NAME = "metadata.json"


REPORT_COLUMNS = [
    "filename",
    "video_id",
    "status",
    "reason",
    "n_frames_read",
    "n_frames_sampled",
    "n_face_frames",
    "n_faces",
    "width",
    "height",
]


# Report statuses; every status but `ok` and `unlisted` leaves a metadata row without a folder.
STATUS_OK = "ok"


STATUS_NO_FACES = "no_faces"


STATUS_UNDECODABLE = "undecodable"


STATUS_MISSING = "missing"  # listed in metadata.json, no such mp4 in the zip


STATUS_UNLISTED = "unlisted"  # mp4 in the zip without a metadata.json entry: not extracted


@dataclass
class VideoFaces:
    """Faces of one video: frame index -> faces, largest first (face k is member `{n}_k.png`)."""

    faces: dict[int, list[Face]]
    n_frames_read: int  # frames ffmpeg decoded
    n_frames_sampled: int  # frames sent to detection (every k-th)
    frame_size: tuple[int, int]  # (width, height); (0, 0) when nothing was decoded
    # Frames the container announces (duration x frame rate), up to the frame limit; None when unknown.
    n_frames_expected: int | None = None

    @property
    def partial_decode(self) -> str:
        """A note when decoding ended well before the container said it would (a file cut short:
        ffmpeg decodes what is there and stops without an error); "" otherwise."""
        expected = self.n_frames_expected
        if expected is None or expected - self.n_frames_read <= max(2, 0.02 * expected):
            return ""
        return f"decoded {self.n_frames_read} of {expected} frames: the file ends early (cut short?)"

    @property
    def n_faces(self) -> int:
        return sum(len(faces) for faces in self.faces.values())

    @property
    def n_face_frames(self) -> int:
        return len(self.faces)  # only frames with a face have an entry


@dataclass
class PartSummary:
    out_zip: Path
    report: pd.DataFrame  # REPORT_COLUMNS, one row per video of metadata.json and per unlisted mp4

    @property
    def report_path(self) -> Path:
        return report_path(self.out_zip)

    @property
    def status_counts(self) -> dict[str, int]:
        return {str(status): int(count) for status, count in self.report["status"].value_counts().sort_index().items()}

    @property
    def n_faces(self) -> int:
        return int(self.report["n_faces"].sum())


def extract_video_faces(
    video: str | Path | bytes,
    detector: FaceDetector,
    settings: FaceSettings,
    name: str | None = None,
    frame_limit: int | None = None,
) -> VideoFaces:
    """Decode, detect in batches and crop the faces of one video. Raises VideoDecodeError.

    Decoding is streamed and runs ahead of detection in a background thread (ffmpeg decodes
    while MTCNN detects): at most about 2 x ``batch_size`` frames are held at a time. With
    ``frame_limit``, decoding stops at that frame index (predict never selects later frames).
    """
    faces: dict[int, list[Face]] = {}
    pending: list[tuple[int, np.ndarray]] = []
    n_read = n_sampled = 0
    frame_size = (0, 0)

    def detect_pending() -> None:
        boxes_per_frame = detect_faces([frame for _, frame in pending], detector, settings)
        for (index, frame), boxes in zip(pending, boxes_per_frame):
            if boxes:
                faces[index] = [Face(box, crop_face(frame, box, settings)) for box in boxes]
        pending.clear()

    header: dict[str, Any] = {}
    for index, frame in read_ahead(decoded_frames(video, name, header), depth=settings.batch_size):
        if frame_limit is not None and index >= frame_limit:
            break  # closing the read-ahead stops ffmpeg
        n_read += 1
        frame_size = (frame.shape[1], frame.shape[0])
        if not is_sampled(index, settings.every_k):
            continue
        pending.append((index, frame))
        n_sampled += 1
        if len(pending) == settings.batch_size:
            detect_pending()
    if pending:
        detect_pending()
    expected = header.get("expected_frames")
    if expected is not None and frame_limit is not None:
        expected = min(expected, frame_limit)
    return VideoFaces(faces, n_read, n_sampled, frame_size, n_frames_expected=expected)


@dataclass(frozen=True)
class RawVideoEntry:
    """One ``metadata.json`` entry of a raw part."""

    filename: str
    label: str  # REAL or FAKE
    split: str
    original: str | None  # the original's .mp4 name for a FAKE, else None


def report_path(out_zip: str | Path) -> Path:
    """``.../deepfake-detection-faces-part-12-0.zip`` -> ``.../deepfake-detection-faces-part-12-0.report.csv``."""
    out_zip = Path(out_zip)
    stem = out_zip.name[: -len(".zip")] if out_zip.name.endswith(".zip") else out_zip.name
    return out_zip.with_name(f"{stem}.report.csv")


def read_raw_metadata(data: bytes, source: str) -> list[RawVideoEntry]:
    """Parse a raw part's ``metadata.json`` (``name.mp4`` -> {label, split, original}), sorted by name."""
    try:
        table = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FaceBatchError(f"{source}: not valid JSON ({error})") from error
    if not isinstance(table, dict):
        raise FaceBatchError(f"{source}: want an object mapping video file names to {{label, split, original}}")
    entries = []
    for filename, values in sorted(table.items()):
        if not isinstance(values, dict):
            raise FaceBatchError(f"{source}: entry {filename!r} is not an object")
        label = str(values.get("label", "")).strip().upper()
        if label not in LABELS:
            raise FaceBatchError(
                f"{source}: entry {filename!r}: label {values.get('label')!r} is neither REAL nor FAKE"
            )
        if "/" in filename or not filename.strip():
            raise FaceBatchError(f"{source}: entry {filename!r} is not a plain video file name")
        original = values.get("original") or None
        split = str(values.get("split") or "")
        entries.append(RawVideoEntry(filename, label, split, str(original) if original else None))
    return entries


def metadata_csv_bytes(entries: Iterable[RawVideoEntry]) -> bytes:
    """``metadata.csv`` of the face-batch format; original is empty for REAL (or unknown) rows."""
    return metadata_csv(
        (entry.filename, entry.split, entry.original if entry.label == "FAKE" and entry.original else "", entry.label)
        for entry in entries
    )


def png_bytes(crop: np.ndarray) -> bytes:
    # demo's encoder: the same pixels as PIL's PNG at zlib level 1, 3.5x faster and 8% smaller (160x160 faces)
    return encode_pngs(crop[np.newaxis])[0]


def extract_part(
    raw_part_zip: str | Path,
    out_zip: str | Path,
    settings: FaceSettings,
    *,
    detector: FaceDetector | None = None,
    progress: bool = True,
) -> PartSummary:
    """One raw DFDC part zip -> one face-batch zip plus its report (``report_path(out_zip)``).

    Videos are read one at a time from the zip (each copied to a temporary file for ffmpeg, then
    deleted); the raw zip is only read. Outputs are written to temporary files and renamed into
    place, with fixed member times, so an interrupted job leaves nothing half-written and the
    same input gives the same bytes.
    """
    raw_part_zip, out_zip = Path(raw_part_zip), Path(out_zip)
    with open_batch_zip(raw_part_zip) as archive:
        metadata_member, video_members = _raw_part_members(archive, raw_part_zip)
        metadata_bytes = read_member(archive, metadata_member, raw_part_zip)
        entries = read_raw_metadata(metadata_bytes, f"{raw_part_zip}: {metadata_member}")
        log.info("%s: %d videos listed, %d mp4 files; %s", raw_part_zip, len(entries), len(video_members), settings)
        detector = detector if detector is not None else load_detector()  # after the cheap checks: TF is slow to load
        rows = []
        with (
            atomic_path(out_zip) as temporary_zip,
            zipfile.ZipFile(temporary_zip, "w") as out,
            tempfile.TemporaryDirectory(prefix="dfdetect-part-") as work_dir,
        ):
            write_member(out, METADATA_MEMBER, metadata_csv_bytes(entries), zipfile.ZIP_DEFLATED)
            for entry in _progress(entries, raw_part_zip, progress):
                member = video_members.get(entry.filename)
                row = _extract_entry(
                    archive, member, entry.filename, out, Path(work_dir), detector, settings, raw_part_zip
                )
                rows.append(row)
                log.info("%s: %s %s", entry.filename, row["status"], row["reason"] or f"({row['n_faces']} faces)")
    listed = {entry.filename for entry in entries}
    for filename in sorted(set(video_members) - listed):
        reason = "mp4 in the zip without a metadata.json entry; not extracted"
        rows.append(_report_row(filename, STATUS_UNLISTED, reason))
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    summary = PartSummary(out_zip=out_zip, report=report)
    with atomic_path(summary.report_path) as temporary_report:
        report.to_csv(temporary_report, index=False, lineterminator="\n")
    log.info("%s -> %s: %s, %d face crops", raw_part_zip, out_zip, summary.status_counts, summary.n_faces)
    return summary


def _extract_entry(
    archive: zipfile.ZipFile,
    member: str | None,
    filename: str,
    out: zipfile.ZipFile,
    work_dir: Path,
    detector: FaceDetector,
    settings: FaceSettings,
    raw_part_zip: Path,
) -> dict[str, Any]:
    if member is None:
        return _report_row(filename, STATUS_MISSING, "listed in metadata.json but not in the zip")
    video_path = work_dir / "video.mp4"
    try:
        try:
            with archive.open(member) as source, open(video_path, "wb") as target:
                shutil.copyfileobj(source, target, length=1 << 20)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # zlib errors surface as these
            return _report_row(filename, STATUS_UNDECODABLE, f"zip member {member} unreadable: {error}")
        try:
            video = extract_video_faces(video_path, detector, settings, name=filename)
        except VideoDecodeError as error:
            return _report_row(filename, STATUS_UNDECODABLE, str(error))
        except Exception as error:
            raise RuntimeError(f"{raw_part_zip}: {member}: face extraction failed: {error}") from error
    finally:
        video_path.unlink(missing_ok=True)
    if video.n_faces == 0:
        reason = (
            f"no face with confidence >= {settings.threshold} and size >= {settings.min_face_size} px "
            f"in {video.n_frames_sampled} sampled frames"
        )
        return _report_row(filename, STATUS_NO_FACES, reason, video)
    video_id = video_id_from_filename(filename)
    for frame_index in sorted(video.faces):
        for face_number, face in enumerate(video.faces[frame_index], start=1):
            member_name = face_member_name(video_id, frame_index, face_number)
            write_member(out, member_name, png_bytes(face.crop), zipfile.ZIP_STORED)  # PNG is compressed already
    if video.partial_decode:
        log.warning("%s: %s", filename, video.partial_decode)
    return _report_row(filename, STATUS_OK, video.partial_decode, video)


def _report_row(filename: str, status: str, reason: str, video: VideoFaces | None = None) -> dict[str, Any]:
    video = video or VideoFaces(faces={}, n_frames_read=0, n_frames_sampled=0, frame_size=(0, 0))
    width, height = video.frame_size
    return {
        "filename": filename,
        "video_id": video_id_from_filename(filename),
        "status": status,
        "reason": reason,
        "n_frames_read": video.n_frames_read,
        "n_frames_sampled": video.n_frames_sampled,
        "n_face_frames": video.n_face_frames,
        "n_faces": video.n_faces,
        "width": width,
        "height": height,
    }


def _raw_part_members(archive: zipfile.ZipFile, source: Path) -> tuple[str, dict[str, str]]:
    """The metadata.json member (at the root or in one sub-folder) and mp4 file name -> member."""
    metadata_members: list[str] = []
    videos: dict[str, str] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = PurePosixPath(info.filename).name
        if name == RAW_METADATA_NAME:
            metadata_members.append(info.filename)
        elif name.lower().endswith(".mp4"):
            if name in videos:
                raise FaceBatchError(f"{source}: video {name} appears twice ({videos[name]} and {info.filename})")
            videos[name] = info.filename
    if not metadata_members:
        raise FaceBatchError(f"{source}: no {RAW_METADATA_NAME} in the zip (a raw DFDC part holds one)")
    if len(metadata_members) > 1:
        raise FaceBatchError(f"{source}: several {RAW_METADATA_NAME} members ({', '.join(metadata_members)}); want one")
    return metadata_members[0], videos


def _progress(entries: list[RawVideoEntry], raw_part_zip: Path, enabled: bool) -> Iterable[RawVideoEntry]:
    # In a job log (not a terminal) a bar line every 30 s is enough.
    interactive = sys.stderr.isatty()
    return tqdm(
        entries,
        desc=f"faces {raw_part_zip.name}",
        unit="video",
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5 if interactive else 30.0,
    )
