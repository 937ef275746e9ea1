"""Build small face batches (exact DFDC face-batch layout) for tests.

Each face image encodes where it came from, so tests can check pixel content, not just shapes:
the red channel is ``frame_index % 256``, green ``frame_index // 256``, and blue a code of the
video (``video_code``) plus 50 * (face_index - 1).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from dfdetect.data.facebatch import face_member_name


def video_code(video_id: str) -> int:
    return hashlib.sha1(video_id.encode()).digest()[0] % 50


def face_pixels(video_id: str, frame_index: int, face_index: int = 1, size: int = 16) -> np.ndarray:
    pixel = (frame_index % 256, frame_index // 256, video_code(video_id) + 50 * (face_index - 1))
    return np.broadcast_to(np.array(pixel, dtype=np.uint8), (size, size, 3)).copy()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Video:
    """One metadata row and (optionally) its folder of faces."""

    video_id: str
    label: str = "REAL"  # REAL | FAKE (any text, to test bad labels)
    original: str | None = None  # video_id of the original
    frames: Iterable[int] = ()  # frame indices with a `{n}.png`
    extra_faces: dict[int, int] = field(default_factory=dict)  # frame -> number of faces (>= 2)
    folder: bool = True  # False: metadata row only
    listed: bool = True  # False: folder only (no metadata row)


def metadata_csv(videos: Iterable[Video], line_ending: str = "\n") -> bytes:
    lines = ["filename,split,original,label"]
    for video in videos:
        if video.listed:
            original = f"{video.original}.mp4" if video.original else ""
            lines.append(f"{video.video_id}.mp4,train,{original},{video.label}")
    return (line_ending.join(lines) + line_ending).encode()


def write_face_batch(
    path: str | Path,
    videos: Iterable[Video],
    size: int = 16,
    line_ending: str = "\n",
    extra_members: dict[str, bytes] | None = None,
    with_metadata: bool = True,
    image: bytes | None = None,
) -> Path:
    """The batch's zip; with ``image``, every face member holds those bytes (fast, for name-only uses)."""
    videos = list(videos)

    def face_png(video_id: str, frame: int, face: int) -> bytes:
        return image if image is not None else png_bytes(face_pixels(video_id, frame, face, size))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        if with_metadata:
            archive.writestr("metadata.csv", metadata_csv(videos, line_ending))
        for video in videos:
            if not video.folder:
                continue
            for frame in video.frames:
                for face in range(1, video.extra_faces.get(frame, 1) + 1):
                    archive.writestr(
                        face_member_name(video.video_id, frame, face), face_png(video.video_id, frame, face)
                    )
        for name, data in (extra_members or {}).items():
            archive.writestr(name, data)
    return path


def family_batch(
    prefix: str, n_families: int = 3, fakes_per_family: int = 2, frames: Iterable[int] = range(0, 300)
) -> list[Video]:
    """A simple batch: n_families reals, each with some fakes, all with the same frames."""
    frames = list(frames)
    videos: list[Video] = []
    for family in range(n_families):
        real = f"{prefix}real{family}"
        videos.append(Video(real, "REAL", None, frames))
        for fake in range(fakes_per_family):
            videos.append(Video(f"{prefix}fake{family}x{fake}", "FAKE", real, frames))
    return videos
