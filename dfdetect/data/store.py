"""The packed frame store: selected frames as memory-mappable uint8 arrays, one set per batch.

Per batch ``{prefix}`` = ``store/{batch}``:

- ``{prefix}.frames.npy``: uint8 (videos, slots, H, W, 3), an ``.npy`` file, so
  ``np.load(path, mmap_mode="r")`` maps it without reading it;
- ``{prefix}.mask.npy``: bool (videos, slots), True where a slot holds a frame;
- ``{prefix}.index.parquet``: row (position in the arrays), batch, video_id, n_filled,
  status (``ok`` | ``unreadable_frame`` | ``no_usable_frames``) and reason.

Decoding happens once, here; training then copies bytes (a PNG decode costs ~0.7 ms, a copy of
the same frame a few microseconds).
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Mapping

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from dfdetect.atomic import atomic_path, commit, temporary_name
from dfdetect.corrupt import CorruptFileError, read_parquet
from dfdetect.data.facebatch import open_batch_zip
from dfdetect.layout import STORE_FILES, BatchPaths
from dfdetect.schema import schema_default

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_UNREADABLE = "unreadable_frame"
STATUS_EMPTY = "no_usable_frames"
INDEX_COLUMNS = ["row", "batch", "video_id", "n_filled", "status", "reason"]
DEFAULT_MAX_IMAGE_SIDE = schema_default(None, "max_image_side")  # config key max_image_side
# Modes Pillow gives 16-bit PNGs (and 32-bit integer / float images): values on a 0..65535 scale.
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class StorePaths(BatchPaths):
    """One batch's packed store; the field names are the pack rule's output names."""

    frames: Path
    mask: Path
    index: Path

    FILES: ClassVar[Mapping[str, str]] = STORE_FILES


class OversizedImageError(ValueError):
    """A face image whose header declares a side above ``max_image_side``; it is never decoded."""


def decode_face(data: bytes, image_size: int, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> np.ndarray:
    """PNG bytes -> (image_size, image_size, 3) uint8, resized only when the crop differs.

    The size comes from the header first: an image with a side above ``max_side`` raises
    OversizedImageError (reason ``oversized``) before any pixel is decoded.
    """
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        # Pillow's message names the buffer object (`<_io.BytesIO object at 0x...>`); callers name the member.
        raise UnidentifiedImageError("cannot identify image file (not a PNG or other image Pillow reads)") from None
    with image:
        width, height = image.size
        if max(width, height) > max_side:
            raise OversizedImageError(f"oversized: {width}x{height} px, above max_image_side {max_side}")
        return fit_face(image, image_size)


def fit_face(image: Image.Image, image_size: int) -> np.ndarray:
    """A face image as (image_size, image_size, 3) uint8 RGB, resized only when its size differs."""
    image = to_rgb(image)
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit grey (and I / F) values are scaled from 0..65535 to 0..255, where Pillow's
    own convert would clip them (40000 would become 255, a white frame)."""
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image).astype(np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def pack_batch(
    zip_path: str | Path,
    selection: pd.DataFrame,
    batch: str,
    paths: StorePaths,
    image_size: int,
    n_slots: int,
    progress: bool = True,
    max_image_side: int = DEFAULT_MAX_IMAGE_SIDE,
) -> pd.DataFrame:
    """Decode the selected frames of one batch straight from its zip into the store.

    ``selection`` has video_id, slot and member (``reduce.select_frames``). A frame that cannot
    be read (or is larger than ``max_image_side``) marks its video ``unreadable_frame`` with the
    member and the reason, and the other videos go on. Returns the index.
    """
    paths.frames.parent.mkdir(parents=True, exist_ok=True)
    video_ids = list(dict.fromkeys(selection["video_id"]))  # first-seen order is the row order
    row_of = {video_id: row for row, video_id in enumerate(video_ids)}
    status = {video_id: (STATUS_OK, "") for video_id in video_ids}
    shape = (len(video_ids), n_slots, image_size, image_size, 3)
    temp_frames = temporary_name(paths.frames, suffix=".npy")  # unique: two jobs on one batch never share it
    try:
        mask = np.zeros(shape[:2], dtype=bool)
        if not video_ids:  # nothing to decode; mmap cannot map zero bytes
            np.save(temp_frames, np.zeros(shape, dtype=np.uint8))
        else:
            # open_memmap writes the .npy header and sizes the (sparse, zero) file; the frames then go
            # in with one plain write per video: writing through a shared memory map costs a page
            # fault (and the file system's page_mkwrite) per 4 KiB page, CPU that pack adds to decoding.
            header = np.lib.format.open_memmap(temp_frames, mode="w+", dtype=np.uint8, shape=shape)
            offset = header.offset
            del header
            clip = np.zeros(shape[1:], dtype=np.uint8)  # one video's slots, written when it is done
            # Rows of one video together (a selection is sorted by video already; this keeps any order safe).
            by_row = selection.iloc[np.argsort(selection["video_id"].map(row_of).to_numpy(), kind="stable")]
            with open_batch_zip(zip_path) as archive, open(temp_frames, "r+b") as out:

                def write_clip(video_id: str) -> None:
                    row = row_of[video_id]
                    clip[~mask[row]] = 0  # no stale pixels from the previous video in empty slots
                    out.seek(offset + row * clip.nbytes)
                    out.write(clip)

                current = None
                rows = by_row[["video_id", "slot", "member"]].itertuples(index=False)
                for video_id, slot, member in tqdm(
                    rows,
                    total=len(selection),
                    desc=f"pack {batch}",
                    unit="frame",
                    mininterval=2.0,
                    disable=not progress,
                ):
                    if video_id != current:
                        if current is not None:
                            write_clip(current)
                        current = video_id
                    try:
                        clip[slot] = decode_face(archive.read(member), image_size, max_image_side)
                        mask[row_of[video_id], slot] = True
                    except DECODE_ERRORS as error:
                        log.warning(
                            "%s: member %s cannot be decoded (%s); video %s is excluded",
                            zip_path,
                            member,
                            error,
                            video_id,
                        )
                        if status[video_id][0] == STATUS_OK:
                            status[video_id] = (STATUS_UNREADABLE, f"{member}: {error}")
                write_clip(current)
                out.flush()
                os.fsync(out.fileno())  # on disk before the rename below makes it the store
    except BaseException:
        temp_frames.unlink(missing_ok=True)  # a failed job leaves no stray temporary file
        raise
    index = pd.DataFrame({"row": range(len(video_ids)), "batch": batch, "video_id": video_ids})
    index["n_filled"] = mask.sum(axis=1).astype("int32")
    index["status"] = [status[video_id][0] for video_id in video_ids]
    index["reason"] = [status[video_id][1] for video_id in video_ids]
    empty = (index["status"] == STATUS_OK) & (index["n_filled"] == 0)
    index.loc[empty, ["status", "reason"]] = [STATUS_EMPTY, "no single-face frame in any slot"]
    # Write the small files first and move the big one into place last, so a killed job
    # never leaves a frames file that looks finished next to a stale index.
    with atomic_path(paths.mask, suffix=".npy") as temporary:
        np.save(temporary, mask)
    with atomic_path(paths.index) as temporary:
        index[INDEX_COLUMNS].to_parquet(temporary, index=False)
    commit(temp_frames, paths.frames)
    return index[INDEX_COLUMNS]


def load_array(path: Path, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` of the store (memory-mapped with ``mmap``); a damaged one raises CorruptFileError."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as error:  # e.g. "mmap length is greater than file size"
        raise CorruptFileError(path, error) from error


def check_batch_files(paths: StorePaths, n_videos: int, frames: tuple[int, ...], mask: tuple[int, ...]) -> None:
    """The three files of one batch describe the same videos and slots (each written whole, but maybe
    by different pack runs when one was replaced by hand)."""
    if len(frames) != 5 or frames[0] != n_videos or mask != frames[:2]:
        raise CorruptFileError(
            paths.frames,
            f"frames {frames}, mask {mask} ({paths.mask.name}) and {n_videos} videos in {paths.index.name} disagree",
            "remove the three files of this batch and rerun `snakemake`: the workflow repacks it",
        )


class FrameStore:
    """Read side: memory-maps the arrays of several batches and finds videos in them."""

    def __init__(self, batches: Iterable[StorePaths]):
        self.frames: dict[str, np.ndarray] = {}
        self.masks: dict[str, np.ndarray] = {}
        indexes = []
        for paths in batches:
            for path in (paths.frames, paths.mask, paths.index):
                if not path.exists():
                    raise FileNotFoundError(f"frame store file {path} is missing (run the pack rule for it)")
            index = read_parquet(paths.index)
            batch = str(index["batch"].iloc[0]) if len(index) else paths.batch
            # mmap cannot map an empty array; an empty batch is tiny anyway.
            self.frames[batch] = load_array(paths.frames, mmap=bool(len(index)))
            self.masks[batch] = load_array(paths.mask)
            check_batch_files(paths, len(index), self.frames[batch].shape, self.masks[batch].shape)
            indexes.append(index)
        if not indexes:
            raise ValueError("a frame store needs at least one batch")
        self.index = pd.concat(indexes, ignore_index=True)
        shapes = {array.shape[1:] for array in self.frames.values() if array.size}
        if len(shapes) > 1:
            raise ValueError(f"frame store batches differ in slots/size: {sorted(shapes)}")
        self.clip_shape: tuple[int, int, int, int] = shapes.pop() if shapes else (0, 0, 0, 3)
        self._position = self.index.set_index("video_id")[["batch", "row"]]

    @classmethod
    def from_folder(cls, folder: str | Path) -> "FrameStore":
        return cls(StorePaths.in_folder(folder))

    @property
    def n_slots(self) -> int:
        return self.clip_shape[0]

    @property
    def image_size(self) -> int:
        return self.clip_shape[1]

    def locate(self, video_ids: Iterable[str]) -> pd.DataFrame:
        """batch and row of each video, in the given order; names the videos not in the store."""
        video_ids = list(video_ids)
        missing = [video_id for video_id in video_ids if video_id not in self._position.index]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise KeyError(f"{len(missing)} video(s) not in the frame store: {shown}")
        return self._position.loc[video_ids].reset_index()

    def clip(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(slots, H, W, 3) uint8 frames and (slots,) mask of one video."""
        batch, row = self._position.loc[video_id, ["batch", "row"]]
        return np.asarray(self.frames[batch][row]), self.masks[batch][row].copy()
