"""The landmarks files next to a batch's store: the landmarks job writes them, train jobs read them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.data.landmarks.detect import LandmarkModel
from dfdetect.data.landmarks.geometry import MODELS, has_face
from dfdetect.data.store import StorePaths
from dfdetect.layout import LANDMARK_FILES, BatchPaths

log = logging.getLogger(__name__)


class LandmarksMissing(FileNotFoundError):
    """A batch's landmarks file is missing or does not match its store; names the batch."""

    def __init__(self, batch: str, path: Path, cause: str) -> None:
        super().__init__(f"batch {batch}: landmarks {path} {cause} (run the landmarks rule for it)")
        self.batch = batch


@dataclass(frozen=True)
class LandmarkPaths(BatchPaths):
    """One batch's landmarks next to its store; the field names are the landmarks rule's output names."""

    landmarks: Path
    boxes: Path

    FILES: ClassVar[Mapping[str, str]] = LANDMARK_FILES


def landmark_store(
    paths: StorePaths, out: LandmarkPaths, model: LandmarkModel, progress: bool = True
) -> dict[str, Any]:
    """Find the landmarks of every filled slot of one packed batch and write both arrays to ``out``.

    Returns counts for the log: points per face, frames, frames with a face, frames that need the
    fallback, and the shares.
    """
    frames = np.load(paths.frames, mmap_mode="r") if paths.frames.stat().st_size > 128 else np.load(paths.frames)
    mask = np.load(paths.mask)
    keypoints = np.full(mask.shape + (model.n_points, 2), np.nan, dtype=np.float32)
    boxes = np.full(mask.shape + (5,), np.nan, dtype=np.float32)
    rows, slots = np.nonzero(mask)
    chunk = 512  # read the memory map in pieces
    with tqdm(
        total=len(rows), desc=f"landmarks {paths.batch}", unit="frame", mininterval=2.0, disable=not progress
    ) as bar:
        for start in range(0, len(rows), chunk):
            part_rows, part_slots = rows[start : start + chunk], slots[start : start + chunk]
            crops = np.stack([frames[row, slot] for row, slot in zip(part_rows, part_slots)])
            found_points, found_boxes = model.detect(crops)
            keypoints[part_rows, part_slots] = found_points
            boxes[part_rows, part_slots] = found_boxes
            bar.update(len(part_rows))
    for path, array in ((out.boxes, boxes), (out.landmarks, keypoints)):
        with atomic_path(path, suffix=".npy") as temporary:
            np.save(temporary, array)
    n_frames = int(mask.sum())
    n_found = int(has_face(keypoints).sum())
    share = n_found / n_frames if n_frames else 0.0
    return {
        "points": model.n_points,
        "frames": n_frames,
        "found": n_found,
        "fallback": n_frames - n_found,
        "share": share,
        "fallback_share": 1.0 - share if n_frames else 0.0,
    }


def load_landmarks(batches: Iterable[LandmarkPaths], masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each batch's keypoints, keyed like ``FrameStore.masks``; LandmarksMissing names a batch
    whose file is missing, does not match its store (a stale file) or holds another number of
    points per face than the others."""
    loaded: dict[str, np.ndarray] = {}
    for paths in batches:
        batch, path = paths.batch, paths.landmarks
        if not path.exists():
            raise LandmarksMissing(batch, path, "is missing")
        keypoints = np.load(path)
        points = keypoints.shape[2] if keypoints.ndim == 4 and keypoints.shape[3] == 2 else None
        if points not in MODELS.values():
            raise LandmarksMissing(batch, path, f"has shape {keypoints.shape}, not (videos, slots, 5 or 68, 2)")
        expected = masks[batch].shape + (points, 2) if batch in masks else None
        if expected is not None and keypoints.shape != expected:
            raise LandmarksMissing(batch, path, f"has shape {keypoints.shape}, the store wants {expected}")
        others = {array.shape[2] for array in loaded.values()}
        if others and points not in others:
            raise LandmarksMissing(batch, path, f"holds {points} points per face, the other batches {others.pop()}")
        loaded[batch] = keypoints
    return loaded
