"""Where ``dfdetect predict`` gets faces from: an mp4, a folder of face crops, or a face-batch zip.

Each input becomes clips (``VideoClip``: per video the selected single-face frames, one per slot,
resized to the model's input size as packing resizes them) or, for what cannot be scored, a
``VideoResult`` carrying 0.5 and the reason. Frame selection is the workflow's
(``dfdetect.data.reduce.select_frames``); mp4 faces are found as ``extract_faces`` finds them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from dfdetect.data.facebatch import face_member_name, open_batch_zip, parse_face_member
from dfdetect.data.faces import decode, extract
from dfdetect.data.faces.detect import FaceDetector, FaceSettings
from dfdetect.data.ingest import ingest_archive
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import DECODE_ERRORS, decode_face, fit_face

STATUS_OK = "ok"
FAILED_SCORE = 0.5  # the uninformative guess: log loss ln 2 whatever the truth
# Failure codes: the status is "code: reason".
NOT_FOUND = "not_found"
UNSUPPORTED = "unsupported"
UNREADABLE = "unreadable"
NO_FACES = "no_faces"
NO_USABLE_FRAMES = "no_usable_frames"
_BATCH_LABEL = "predict"  # select_frames keeps a batch column; inputs here have no batch id


class VideoFailure(Exception):
    """One video (or input) that cannot be scored; ``status`` is what the CSV says."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.status = f"{code}: {reason}"


@dataclass(frozen=True)
class FrameSelection:
    """The workflow's frame selection (config ``frames.step`` / ``frames.count``)."""

    step: int  # one slot per `step` frame indices
    count: int  # slots per video

    def __post_init__(self) -> None:
        if self.step < 1 or self.count < 1:
            raise ValueError(f"frames step and count must be >= 1, got step {self.step}, count {self.count}")

    @property
    def frame_limit(self) -> int:
        """Frames at or after this index fall outside every slot and are never looked at."""
        return self.step * self.count


@dataclass
class VideoClip:
    """The selected faces of one video, ready for the model."""

    filename: str
    frames: np.ndarray  # (count, size, size, 3) uint8; zeros where the mask is False
    mask: np.ndarray  # (count,) bool, True where a slot holds a frame
    note: str = ""  # e.g. an mp4 that decoded only partly (scored from the frames it has)


@dataclass
class VideoResult:
    filename: str
    label: float = FAILED_SCORE
    status: str = STATUS_OK
    n_frames_scored: int = 0
    note: str = ""


@dataclass(frozen=True)
class FaceSource:
    """Face images of one or more videos: a frame table like ingest's (video_id, frame_index,
    face_index, member) and how to read one member as a (size, size, 3) uint8 face."""

    frames: pd.DataFrame
    read_face: Callable[[str, int], np.ndarray]  # (member, image_size) -> face
    note: str = ""  # what the scores should carry about the source (an mp4 that decoded only partly)


def resize_face(face: np.ndarray, image_size: int) -> np.ndarray:
    """An RGB crop at the model's size, resized exactly as ``store.decode_face`` resizes PNG crops."""
    return fit_face(Image.fromarray(np.ascontiguousarray(face)), image_size)


def build_clip(filename: str, selection: pd.DataFrame, source: FaceSource, image_size: int, count: int) -> VideoClip:
    """The selected frames of one video (``select_frames`` rows: slot, member) as a clip."""
    frames = np.zeros((count, image_size, image_size, 3), dtype=np.uint8)
    mask = np.zeros(count, dtype=bool)
    for slot, member in selection[["slot", "member"]].itertuples(index=False):
        try:
            frames[slot] = source.read_face(member, image_size)
        except DECODE_ERRORS as error:
            raise VideoFailure(UNREADABLE, f"face image {member} cannot be decoded ({error})") from error
        mask[slot] = True
    return VideoClip(filename, frames, mask, source.note)


def selected_clips(
    source: FaceSource, videos: Sequence[tuple[str, str]], selection: FrameSelection, image_size: int
) -> Iterator[VideoClip | VideoResult]:
    """A clip, or a failed result, per (video_id, filename), in the given order."""
    chosen = select_frames(source.frames, [video_id for video_id, _ in videos], selection.step, selection.count)
    per_video = dict(tuple(chosen.groupby("video_id", sort=False)))
    has_faces = set(source.frames["video_id"])
    for video_id, filename in videos:
        if video_id not in has_faces:
            yield failed(filename, VideoFailure(NO_FACES, "no face images"))
        elif video_id not in per_video:
            reason = (
                f"no frame with exactly one face among frames 0-{selection.frame_limit - 1} "
                f"({selection.count} slots of {selection.step})"
            )
            yield failed(filename, VideoFailure(NO_USABLE_FRAMES, reason))
        else:
            try:
                yield build_clip(filename, per_video[video_id], source, image_size, selection.count)
            except VideoFailure as error:
                yield failed(filename, error)


def failed(filename: str, error: VideoFailure) -> VideoResult:
    return VideoResult(filename, FAILED_SCORE, error.status)


# ---------------------------------------------------------------- input kinds


def input_kind(path: Path) -> str:
    """mp4 | folder | zip; raises VideoFailure for what predict cannot read."""
    if not path.exists():
        raise VideoFailure(NOT_FOUND, f"{path} does not exist")
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".zip":
        return "zip"
    raise VideoFailure(UNSUPPORTED, f"{path}: want an .mp4, a folder of face crops or a face-batch .zip")


def input_filename(path: Path) -> str:
    """How the CSV names an input that fails as a whole: a face folder by its video's .mp4 name."""
    return f"{path.name}.mp4" if path.is_dir() else path.name


def mp4_face_source(
    path: Path, detector: FaceDetector, faces_settings: FaceSettings, selection: FrameSelection
) -> FaceSource:
    """MTCNN faces of the frames that can fall into a slot, found by ``extract.extract_video_faces``.

    Decoding stops at ``selection.frame_limit``: later frames are never selected.
    """
    video_id = path.stem
    try:
        found = extract.extract_video_faces(
            path, detector, faces_settings, name=path.name, frame_limit=selection.frame_limit
        )
    except decode.VideoDecodeError as error:
        raise VideoFailure(UNREADABLE, str(error)) from error
    if found.n_faces == 0:
        raise VideoFailure(
            NO_FACES,
            f"no face with confidence >= {faces_settings.threshold} and size >= "
            f"{faces_settings.min_face_size} px in frames 0-{selection.frame_limit - 1}",
        )
    rows = [
        (video_id, index, number, face_member_name(video_id, index, number))
        for index, frame_faces in found.faces.items()
        for number in range(1, len(frame_faces) + 1)
    ]
    # Only a single-face frame is ever selected, so only `{n}.png` is ever read.
    crops = {face_member_name(video_id, index): frame_faces[0].crop for index, frame_faces in found.faces.items()}
    return FaceSource(_frame_table(rows), lambda member, size: resize_face(crops[member], size), found.partial_decode)


def folder_face_source(folder: Path) -> FaceSource:
    """``{n}.png`` / ``{n}_k.png`` crops directly in ``folder`` (one video, named by the folder)."""
    rows = []
    for path in sorted(folder.iterdir()):
        member = parse_face_member(f"{folder.name}/{path.name}")
        if member is not None and path.is_file():
            rows.append((folder.name, member.frame_index, member.face_index, path.name))
    if not rows:
        raise VideoFailure(NO_FACES, f"{folder}: no face images ({{n}}.png or {{n}}_{{k}}.png)")
    return FaceSource(_frame_table(rows), lambda member, size: decode_face((folder / member).read_bytes(), size))


def _frame_table(rows: list[tuple[str, int, int, str]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["video_id", "frame_index", "face_index", "member"])
    table.insert(0, "batch", _BATCH_LABEL)
    return table.astype({"frame_index": "int32", "face_index": "int16"})


def zip_videos(path: Path, selection: FrameSelection, image_size: int) -> Iterator[VideoClip | VideoResult]:
    """Every video of a face-batch zip's metadata.csv; a zip that cannot be read fails as a whole."""
    with contextlib.ExitStack() as stack:
        try:
            archive = stack.enter_context(open_batch_zip(path))
            manifest = ingest_archive(archive, path, _BATCH_LABEL)  # one open: one central-directory read
        except ValueError as error:  # FaceBatchError, and whatever else cannot be read as a face batch
            raise VideoFailure(UNREADABLE, str(error)) from error
        videos = list(manifest.videos[["video_id", "filename"]].itertuples(index=False, name=None))
        source = FaceSource(manifest.frames, lambda member, size: decode_face(archive.read(member), size))
        yield from selected_clips(source, videos, selection, image_size)


class LazyDetector:
    """A FaceDetector that loads the real one at the first detection: inputs without an mp4, and
    mp4s that cannot be decoded, load none."""

    def __init__(self, factory: Callable[[], FaceDetector]) -> None:
        self._factory = factory
        self._detector: FaceDetector | None = None

    def detect_faces(self, image: Any, **kwargs: Any) -> Any:
        if self._detector is None:
            self._detector = self._factory()
        return self._detector.detect_faces(image, **kwargs)
