"""MTCNN face detection on video frames and square face crops (``FaceSettings``: config section ``faces``).

Importing this module is cheap: mtcnn and TensorFlow are imported only by ``load_detector``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Protocol

import numpy as np
from PIL import Image

from dfdetect.config import SectionSettings

# mtcnn 1.0.0 sizes its image pyramid as if min_face_size were 12 and fails ("convolution
# resulted in an empty output") for min_face_size above about 22. It runs correctly at 20, so a
# larger minimum is reached by shrinking the frame by 20/min_face_size before detection: the same
# pyramid relative to the source frame, and much faster on 1080p video.
_MTCNN_SAFE_MIN_FACE = 20


_MTCNN_MIN_SIDE = 24  # below this the pyramid is empty and mtcnn fails; such frames hold no face


class FaceDetector(Protocol):
    """What extraction needs from a detector: mtcnn's ``MTCNN.detect_faces`` call."""

    def detect_faces(self, image: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class FaceSettings(SectionSettings):
    """Config section ``faces`` (its keys but ``resources``); build it with ``from_mapping``/``of``,
    which take the schema's defaults and ranges."""

    SECTION: ClassVar[str] = "faces"

    margin: float  # border around the detector box, share of its size
    every_k: int  # sample every k-th frame (the DFDC batches: every one)
    threshold: float  # MTCNN (ONet) confidence threshold
    min_face_size: int  # px in the source frame
    crop_size: int
    batch_size: int  # frames per batched detection call
    max_faces: int | None  # faces kept per frame, largest first; None: all


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
