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

Importing this module is cheap: mtcnn and TensorFlow are imported only by ``load_detector``.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import shutil
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Mapping, Protocol, TypeVar

import numpy as np
import pandas as pd
from PIL import Image
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
from dfdetect.data.png import encode_pngs
from dfdetect.schema import schema_default

log = logging.getLogger(__name__)
T = TypeVar("T")

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

# mtcnn 1.0.0 sizes its image pyramid as if min_face_size were 12 and fails ("convolution
# resulted in an empty output") for min_face_size above about 22. It runs correctly at 20, so a
# larger minimum is reached by shrinking the frame by 20/min_face_size before detection: the same
# pyramid relative to the source frame, and much faster on 1080p video.
_MTCNN_SAFE_MIN_FACE = 20
_MTCNN_MIN_SIDE = 24  # below this the pyramid is empty and mtcnn fails; such frames hold no face
# ffmpeg's stderr: a version banner, stream listings and logged messages such as
# `[in#0 @ 0x55c6...] moov atom not found`; imageio-ffmpeg wraps it in its own headers.
_FFMPEG_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
_FFMPEG_NOISE = re.compile(
    r"^(===|ffmpeg version|built with|configuration:|lib\w+\s+\d|Could not (load meta|read frame))"
)


class VideoDecodeError(RuntimeError):
    """A video that ffmpeg cannot read; the message names the video and says why."""


class FaceDetector(Protocol):
    """What extraction needs from a detector: mtcnn's ``MTCNN.detect_faces`` call."""

    def detect_faces(self, image: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class FaceSettings:
    """Config section ``faces`` (its keys but ``resources``); the defaults are the schema's."""

    margin: float = schema_default("faces", "margin")  # border around the detector box, share of its size
    every_k: int = schema_default("faces", "every_k")  # sample every k-th frame (the DFDC batches: every one)
    threshold: float = schema_default("faces", "threshold")  # MTCNN (ONet) confidence threshold
    min_face_size: int = schema_default("faces", "min_face_size")  # px in the source frame
    crop_size: int = schema_default("faces", "crop_size")
    batch_size: int = schema_default("faces", "batch_size")  # frames per batched detection call
    max_faces: int | None = schema_default("faces", "max_faces")  # faces kept per frame, largest first; None: all

    def __post_init__(self) -> None:
        problems = []
        if not self.margin >= 0:
            problems.append(f"margin must be >= 0, got {self.margin}")
        if self.every_k < 1:
            problems.append(f"every_k must be >= 1, got {self.every_k}")
        if not 0 < self.threshold < 1:
            problems.append(f"threshold must be in (0, 1), got {self.threshold}")
        if self.min_face_size < 12:
            problems.append(f"min_face_size must be >= 12 px (MTCNN's smallest window), got {self.min_face_size}")
        if self.crop_size < 1:
            problems.append(f"crop_size must be >= 1, got {self.crop_size}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_faces is not None and self.max_faces < 1:
            problems.append(f"max_faces must be >= 1 or None, got {self.max_faces}")
        if problems:
            raise ValueError("face settings: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaceSettings:
        """Settings from a config mapping (e.g. Snakemake params); unknown keys are an error."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"face settings: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**dict(values))


@dataclass(frozen=True)
class Box:
    """A detector box in source-frame pixels (x2, y2 exclusive edges) with its confidence."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2


@dataclass(frozen=True)
class Face:
    box: Box
    crop: np.ndarray  # uint8 RGB, crop_size x crop_size


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


# ---------------------------------------------------------------- detector and detection


def load_detector(device: str | None = None) -> FaceDetector:
    """An MTCNN detector (weights ship with the package). ``device`` None picks GPU:0 when
    TensorFlow sees a GPU, else CPU:0. Imports TensorFlow: call once per job and reuse."""
    import tensorflow as tf
    from mtcnn import MTCNN

    if device is None:
        device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    return MTCNN(stages="face_and_landmarks_detection", device=device)


def detection_scale(min_face_size: int) -> float:
    """Factor frames are shrunk by before detection (see _MTCNN_SAFE_MIN_FACE)."""
    return min(1.0, _MTCNN_SAFE_MIN_FACE / min_face_size)


def detect_faces(frames: list[np.ndarray], detector: FaceDetector, settings: FaceSettings) -> list[list[Box]]:
    """Boxes per frame (source-frame pixels), largest first, at most ``max_faces``.

    Frames go to the detector in batches of ``settings.batch_size``; all frames must share one
    shape (frames of one video do): mtcnn 1.0.0 pads a batch of mixed shapes and then shifts
    the boxes back by the wrong frame's padding when a frame has no face.
    """
    if not frames:
        return []
    shapes = {frame.shape for frame in frames}
    if len(shapes) > 1:
        raise ValueError(f"detect_faces: frames of one call must share a shape, got {sorted(shapes)}")
    height, width = frames[0].shape[:2]
    scale = detection_scale(settings.min_face_size)
    if min(height, width) * scale < _MTCNN_MIN_SIDE:
        return [[] for _ in frames]
    boxes: list[list[Box]] = []
    for start in range(0, len(frames), settings.batch_size):
        chunk = [_detector_input(frame, scale) for frame in frames[start : start + settings.batch_size]]
        rows = detector.detect_faces(
            chunk,
            min_face_size=min(settings.min_face_size, _MTCNN_SAFE_MIN_FACE),
            threshold_onet=settings.threshold,
            output_type="numpy",
            box_format="xyxy",
            fit_to_image=False,  # keep the true box; crop_face handles frame borders
        )
        boxes.extend(_boxes_per_frame(np.asarray(rows), len(chunk), scale, settings))
    return boxes


def _detector_input(frame: np.ndarray, scale: float) -> np.ndarray:
    """float32 RGB (mtcnn is about 30% faster on float32 than on uint8 input), shrunk by scale."""
    if scale < 1.0:
        height, width = frame.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frame = np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
    return frame.astype(np.float32)


def _boxes_per_frame(rows: np.ndarray, n_frames: int, scale: float, settings: FaceSettings) -> list[list[Box]]:
    # mtcnn's numpy output: one row per face, [frame_in_batch, x1, y1, x2, y2, confidence, landmarks...]
    per_frame: list[list[Box]] = [[] for _ in range(n_frames)]
    for row in np.atleast_2d(rows):
        x1, y1, x2, y2 = (float(value) / scale for value in row[1:5])
        box = Box(x1, y1, x2, y2, float(row[5]))
        if box.confidence >= settings.threshold and max(box.width, box.height) >= settings.min_face_size:
            per_frame[int(row[0])].append(box)
    return [order_faces(boxes, settings.max_faces) for boxes in per_frame]


def order_faces(boxes: Iterable[Box], max_faces: int | None) -> list[Box]:
    """Largest box first, ties broken left to right then top to bottom; the first max_faces."""
    ordered = sorted(boxes, key=lambda box: (-box.area, box.x1, box.y1))
    return ordered if max_faces is None else ordered[:max_faces]


def crop_face(frame: np.ndarray, box: Box, settings: FaceSettings) -> np.ndarray:
    """Square crop around ``box`` grown by ``margin``, resized to ``crop_size`` (uint8 RGB).

    The square keeps its size; near a border it is shifted inside the frame, and only a square
    larger than the frame is padded with black.
    """
    height, width = frame.shape[:2]
    side = max(1, round(max(box.width, box.height) * (1 + settings.margin)))
    centre_x, centre_y = box.centre
    left = _clamp_start(round(centre_x - side / 2), side, width)
    top = _clamp_start(round(centre_y - side / 2), side, height)
    square = np.zeros((side, side, 3), dtype=np.uint8)
    src_x1, src_y1 = max(left, 0), max(top, 0)
    src_x2, src_y2 = min(left + side, width), min(top + side, height)
    if src_x2 > src_x1 and src_y2 > src_y1:
        square[src_y1 - top : src_y2 - top, src_x1 - left : src_x2 - left] = frame[src_y1:src_y2, src_x1:src_x2, :3]
    if side == settings.crop_size:
        return square
    resized = Image.fromarray(square).resize((settings.crop_size, settings.crop_size), Image.BILINEAR)
    return np.asarray(resized)


def _clamp_start(start: int, side: int, limit: int) -> int:
    if side >= limit:
        return (limit - side) // 2  # larger than the frame: centre it, pad both sides
    return min(max(start, 0), limit - side)


# ---------------------------------------------------------------- decoding


def is_sampled(index: int, every_k: int) -> bool:
    """Frames 0, k, 2k, ... are looked at; the others are skipped."""
    return index % every_k == 0


def iter_video_frames(
    video: str | Path | bytes, every_k: int = 1, name: str | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, uint8 RGB frame) for every k-th frame of an mp4, decoded by imageio-ffmpeg.

    ``video`` is a path or the file's bytes (written to a temporary file, since ffmpeg reads
    files; deleted afterwards). ``name`` is how errors name the video. Raises VideoDecodeError.
    Frames are read-only views of ffmpeg's output; copy one to modify it.
    """
    if every_k < 1:
        raise ValueError(f"every_k must be >= 1, got {every_k}")
    for index, frame in decoded_frames(video, name):
        if is_sampled(index, every_k):
            yield index, frame


def decoded_frames(
    video: str | Path | bytes, name: str | None = None, header: dict[str, Any] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Every frame of the video, numbered from 0; see iter_video_frames. ``header``, when given,
    receives ``expected_frames``: what the container announces (duration x fps), None when unknown."""
    if isinstance(video, (bytes, bytearray, memoryview)):
        with tempfile.TemporaryDirectory(prefix="dfdetect-video-") as folder:
            path = Path(folder) / "video.mp4"
            path.write_bytes(bytes(video))
            yield from decoded_frames(path, name or "video bytes", header)
        return
    yield from _file_frames(Path(video), name or str(video), header if header is not None else {})


def _file_frames(path: Path, name: str, header: dict[str, Any]) -> Iterator[tuple[int, np.ndarray]]:
    import imageio_ffmpeg  # light (no numpy-heavy deps), but only extraction needs it

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        try:
            meta = next(reader)
            width, height = meta["size"]
        except Exception as error:  # imageio-ffmpeg raises OSError, RuntimeError or header-parsing errors
            raise VideoDecodeError(f"{name}: {_ffmpeg_reason(error, path, name)}") from error
        duration, fps = meta.get("duration"), meta.get("fps")
        header["expected_frames"] = round(duration * fps) if duration and fps else None
        index = 0
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except Exception as error:
                raise VideoDecodeError(f"{name}: frame {index}: {_ffmpeg_reason(error, path, name)}") from error
            yield index, np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            index += 1
        if index == 0:
            raise VideoDecodeError(f"{name}: no video frames decoded")
    finally:
        reader.close()


def _ffmpeg_reason(error: BaseException, path: Path, name: str) -> str:
    """Why ffmpeg failed, short: its last two logged messages (``[in#0 @ 0x...] moov atom not
    found``) without the prefix, else the last plain line; naming the video, not a temp file."""
    logged: list[str] = []
    plain: list[str] = []
    for line in str(error).replace(str(path), name).splitlines():
        line = line.strip()
        message = _FFMPEG_LOG_PREFIX.sub("", line)
        if not message or _FFMPEG_NOISE.match(message):
            continue
        target = logged if message != line else plain
        if message not in target:
            target.append(message)
    if logged:
        return "; ".join(logged[-2:])
    return plain[-1] if plain else type(error).__name__


def _read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """The items of ``items``, pulled up to ``depth`` ahead by a background thread.

    The thread owns the source iterator (it also closes it, e.g. to stop ffmpeg); an error in
    the source is raised here, and stopping early stops the thread.
    """
    buffer: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()
    end = object()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pull() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # handed to the consumer, which raises it
            put((end, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pull, name="dfdetect-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


# ---------------------------------------------------------------- one video


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
    for index, frame in _read_ahead(decoded_frames(video, name, header), depth=settings.batch_size):
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


# ---------------------------------------------------------------- one raw part


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
