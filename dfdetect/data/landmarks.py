"""Five facial keypoints per packed frame (MTCNN), and the face regions built from them.

The ``landmarks`` rule runs MTCNN over every filled slot of a batch's frame store and writes,
next to the store (``store/{batch}``):

- ``{prefix}.landmarks.npy``: float32 (videos, slots, 5, 2), the keypoints ``KEYPOINTS`` as
  (x, y) in the store's pixel coordinates; NaN where the slot is empty or no face was found;
- ``{prefix}.landmark_boxes.npy``: float32 (videos, slots, 5), the detector's box
  (x1, y1, x2, y2, store pixels) and confidence of the face the keypoints belong to; NaN likewise.

A frame without a face never fails the batch. MTCNN finds the face on crops of real face photos
but not on every frame (about half of the demo's procedural faces, see ``DETECT_SIDE``), so
everything built on landmarks has a **fallback**: the DFDC face crops are face-centred, so a frame
without landmarks uses a fixed
crop-centred face geometry (``fallback_keypoints`` and ``face_ellipse``: an upright ellipse
around the crop's centre, covering brows to chin, with the keypoints where a centred face has
them).

Importing this module is cheap: mtcnn (and TensorFlow) are imported only by the detector
(``dfdetect.data.faces.detect.load_detector``), inside the landmarks job. Training jobs only read the arrays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np
from PIL import Image
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.config import SectionSettings
from dfdetect.data.store import StorePaths
from dfdetect.layout import LANDMARK_FILES, BatchPaths

log = logging.getLogger(__name__)

KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)

# The fallback geometry, as shares of the crop side (x, y): a face centred in its crop, the way
# the DFDC face crops (and the demo's) are cut. The ellipse spans brows to chin and cheek to cheek.
FALLBACK_KEYPOINTS = np.array([(0.36, 0.42), (0.64, 0.42), (0.50, 0.57), (0.39, 0.72), (0.61, 0.72)], np.float32)
FALLBACK_ELLIPSE = {"centre": (0.50, 0.52), "radii": (0.34, 0.42)}

# Crops are resized to this side and padded by a black border before detection: a face that fills
# its crop edge to edge is often missed without the border (with it, MTCNN finds the face in about
# half of the demo's procedural crops instead of 1 in 20), and at 112 px a face of at least
# min_face_share of the crop is well above MTCNN's 20 px minimum, at half the time of 160 px.
DETECT_SIDE = 112
DETECT_BORDER = 0.25  # share of the side added on every side (black)


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


# ------------------------------------------------------------------------------------------------
# Geometry (numpy and OpenCV only)


def fallback_keypoints(size: int) -> np.ndarray:
    """(5, 2) float32 keypoints of a crop-centred face in a ``size`` x ``size`` crop."""
    return FALLBACK_KEYPOINTS * np.float32(size)


def has_face(keypoints: np.ndarray) -> np.ndarray:
    """True where a (..., 5, 2) keypoint array holds a detected face (no NaN)."""
    return ~np.isnan(keypoints).any(axis=(-1, -2))


def face_ellipse(size: int) -> np.ndarray:
    """The fallback face region: uint8 (size, size) mask, 1 inside a crop-centred ellipse."""
    import cv2

    mask = np.zeros((size, size), dtype=np.uint8)
    (cx, cy), (rx, ry) = FALLBACK_ELLIPSE["centre"], FALLBACK_ELLIPSE["radii"]
    cv2.ellipse(
        mask,
        (round(cx * size), round(cy * size)),
        (max(1, round(rx * size)), max(1, round(ry * size))),
        0,
        0,
        360,
        1,
        thickness=-1,
    )
    return mask


def face_outline(keypoints: np.ndarray) -> np.ndarray:
    """Points around the whole face from its five keypoints, (9, 2) float32.

    Five points cover only eyes to mouth; self-blending needs the face from brows to chin. With
    ``across`` the vector from the left to the right eye and ``down`` from the eyes' midpoint to
    the mouth's, the outline adds the brows (eyes moved up by 0.55 ``down`` and out by 0.3
    ``across``), the temples and cheeks (eyes out by 0.6 ``across``, down by 0.35 ``down``),
    the jaw (mouth corners out by 0.35 ``across``, down by 0.35 ``down``) and the chin (mouth
    midpoint down by 0.75 ``down``): about the region of the 68-point jaw line plus brows.
    """
    points = np.asarray(keypoints, dtype=np.float32)
    left_eye, right_eye = points[LEFT_EYE], points[RIGHT_EYE]
    mouth_left, mouth_right = points[MOUTH_LEFT], points[MOUTH_RIGHT]
    across = right_eye - left_eye
    down = (mouth_left + mouth_right) / 2 - (left_eye + right_eye) / 2
    outline = [
        left_eye - 0.3 * across - 0.55 * down,
        right_eye + 0.3 * across - 0.55 * down,
        left_eye - 0.6 * across + 0.35 * down,
        right_eye + 0.6 * across + 0.35 * down,
        mouth_left - 0.35 * across + 0.35 * down,
        mouth_right + 0.35 * across + 0.35 * down,
        (mouth_left + mouth_right) / 2 + 0.75 * down,
        (left_eye + right_eye) / 2 - 0.7 * down,  # forehead centre
        points[NOSE],
    ]
    return np.array(outline, dtype=np.float32)


def face_hull(keypoints: np.ndarray | None, size: int) -> np.ndarray:
    """uint8 (size, size) mask of the face: the convex hull of ``face_outline``; the crop-centred
    ellipse (``face_ellipse``) when ``keypoints`` is None or holds NaN."""
    import cv2

    if keypoints is None or not has_face(np.asarray(keypoints)):
        return face_ellipse(size)
    mask = np.zeros((size, size), dtype=np.uint8)
    hull = cv2.convexHull(np.round(face_outline(keypoints)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    if not mask.any():  # degenerate keypoints (all in one spot, or off the crop)
        return face_ellipse(size)
    return mask


# ------------------------------------------------------------------------------------------------
# Detection (the landmarks job)


@dataclass(frozen=True)
class LandmarkSettings(SectionSettings):
    """Config section ``landmarks`` (its keys but ``resources``); build it with ``from_mapping``/``of``."""

    SECTION: ClassVar[str] = "landmarks"

    threshold: float  # MTCNN (ONet) confidence a face needs
    batch_size: int  # crops per detector call
    min_face_share: float  # smallest box side, share of the crop


def detector_input(crop: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The crop as the detector sees it: resized to DETECT_SIDE, with a black border.

    Returns (float32 image, scale, border): a detector point p maps back to (p - border) / scale.
    """
    size = crop.shape[0]
    scale = DETECT_SIDE / size
    if size != DETECT_SIDE:
        side = round(size * scale)
        crop = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR))
    border = round(crop.shape[0] * DETECT_BORDER)
    padded = np.pad(crop, ((border, border), (border, border), (0, 0)))
    return padded.astype(np.float32), scale, float(border)


def detect_landmarks(
    crops: np.ndarray,
    detector: Any,
    settings: LandmarkSettings | None = None,
    progress: bool = False,
    desc: str = "landmarks",
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 5, 2) and box + confidence (N, 5) of the main face in each square crop.

    ``crops``: (N, S, S, 3) uint8, all one size. ``detector``: mtcnn's ``MTCNN`` (or anything with
    its ``detect_faces``). The main face is the largest box with the threshold's confidence whose
    side is at least ``min_face_share`` of the crop; NaN rows where there is none.
    """
    settings = settings or LandmarkSettings.from_mapping()
    crops = np.asarray(crops)
    n, size = len(crops), (crops.shape[1] if crops.ndim == 4 else 0)
    keypoints = np.full((n, 5, 2), np.nan, dtype=np.float32)
    boxes = np.full((n, 5), np.nan, dtype=np.float32)
    with tqdm(total=n, desc=desc, unit="frame", mininterval=2.0, disable=not progress) as bar:
        for start in range(0, n, settings.batch_size):
            chunk = crops[start : start + settings.batch_size]
            inputs = [detector_input(np.ascontiguousarray(crop)) for crop in chunk]
            rows = np.atleast_2d(
                np.asarray(
                    detector.detect_faces(
                        [image for image, _, _ in inputs],
                        min_face_size=20,
                        threshold_onet=settings.threshold,
                        output_type="numpy",
                        box_format="xyxy",
                        fit_to_image=False,
                    )
                )
            )
            best_area = np.zeros(len(chunk))
            for row in rows:
                if row.size < 16:
                    continue
                position = int(row[0])
                _, scale, border = inputs[position]
                box = (row[1:5] - border) / scale
                width, height = box[2] - box[0], box[3] - box[1]
                area = width * height
                if (
                    row[5] < settings.threshold
                    or min(width, height) < settings.min_face_share * size
                    or area <= best_area[position]
                ):
                    continue
                best_area[position] = area
                # mtcnn 1.0.0's numpy rows hold the five x values, then the five y values
                keypoints[start + position] = (np.stack([row[6:11], row[11:16]], axis=-1) - border) / scale
                boxes[start + position] = [*box, row[5]]
            bar.update(len(chunk))
    return keypoints, boxes


def landmark_store(
    paths: StorePaths,
    out: LandmarkPaths,
    detector: Any,
    settings: LandmarkSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Detect the keypoints of every filled slot of one packed batch and write both arrays.

    Returns counts for the log: frames, frames with a face, and their share.
    """
    settings = settings or LandmarkSettings.from_mapping()
    frames = np.load(paths.frames, mmap_mode="r") if paths.frames.stat().st_size > 128 else np.load(paths.frames)
    mask = np.load(paths.mask)
    keypoints = np.full(mask.shape + (5, 2), np.nan, dtype=np.float32)
    boxes = np.full(mask.shape + (5,), np.nan, dtype=np.float32)
    rows, slots = np.nonzero(mask)
    chunk = max(1, settings.batch_size) * 8  # read the memory map in pieces, detect in batches
    with tqdm(
        total=len(rows), desc=f"landmarks {paths.batch}", unit="frame", mininterval=2.0, disable=not progress
    ) as bar:
        for start in range(0, len(rows), chunk):
            part_rows, part_slots = rows[start : start + chunk], slots[start : start + chunk]
            crops = np.stack([frames[row, slot] for row, slot in zip(part_rows, part_slots)])
            found_points, found_boxes = detect_landmarks(crops, detector, settings)
            keypoints[part_rows, part_slots] = found_points
            boxes[part_rows, part_slots] = found_boxes
            bar.update(len(part_rows))
    for path, array in ((out.boxes, boxes), (out.landmarks, keypoints)):
        with atomic_path(path, suffix=".npy") as temporary:
            np.save(temporary, array)
    n_frames = int(mask.sum())
    n_found = int(has_face(keypoints).sum())
    return {"frames": n_frames, "found": n_found, "share": n_found / n_frames if n_frames else 0.0}


# ------------------------------------------------------------------------------------------------
# Reading (the train job)


def load_landmarks(batches: Iterable[LandmarkPaths], masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each batch's keypoints, keyed like ``FrameStore.masks``; LandmarksMissing names a batch
    whose file is missing or whose shape does not match its store (a stale file)."""
    loaded = {}
    for paths in batches:
        batch, path = paths.batch, paths.landmarks
        if not path.exists():
            raise LandmarksMissing(batch, path, "is missing")
        keypoints = np.load(path)
        expected = masks[batch].shape + (5, 2) if batch in masks else None
        if expected is not None and keypoints.shape != expected:
            raise LandmarksMissing(batch, path, f"has shape {keypoints.shape}, the store wants {expected}")
        loaded[batch] = keypoints
    return loaded
