"""Video frames from mp4 files or bytes through imageio-ffmpeg, read ahead in a thread while detection runs;
ffmpeg's complaints become one short reason per video."""

from __future__ import annotations

import queue
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, TypeVar

import numpy as np

T = TypeVar("T")


# ffmpeg's stderr: a version banner, stream listings and logged messages such as
# `[in#0 @ 0x55c6...] moov atom not found`; imageio-ffmpeg wraps it in its own headers.
_FFMPEG_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")


_FFMPEG_NOISE = re.compile(
    r"^(===|ffmpeg version|built with|configuration:|lib\w+\s+\d|Could not (load meta|read frame))"
)


class VideoDecodeError(RuntimeError):
    """A video that ffmpeg cannot read; the message names the video and says why."""


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


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
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
