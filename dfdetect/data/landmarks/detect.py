"""Finding landmarks on packed face crops: the ``landmarks`` settings and the two models (dlib's
68-point predictor, MTCNN's five keypoints). dlib, mtcnn and TensorFlow are imported only here,
inside the landmarks job."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from dfdetect.config import SectionSettings
from dfdetect.data.landmarks.geometry import MODELS

log = logging.getLogger(__name__)


# MTCNN: crops are resized to this side and padded by a black border before detection: a face that
# fills its crop edge to edge is often missed without the border (with it, MTCNN finds the face in
# about half of the demo's procedural crops instead of 1 in 20), and at 112 px a face of at least
# min_face_share of the crop is well above MTCNN's 20 px minimum, at half the time of 160 px.
DETECT_SIDE = 112


DETECT_BORDER = 0.25  # share of the side added on every side (black)


# dlib: its HOG detector scans 80 px windows, so crops go to 128 px (a face of 60-90% of the crop
# is then 77-115 px) with the same border. On the demo's 64 px crops this finds a face in 96-98%
# of the frames at hog_threshold -0.5 (about 5 ms a frame on one core); 160 px finds no more.
DLIB_SIDE = 128


PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


@dataclass(frozen=True)
class LandmarkSettings(SectionSettings):
    """Config section ``landmarks`` (its keys but ``resources``); build it with ``from_mapping``/``of``."""

    SECTION: ClassVar[str] = "landmarks"

    model: str  # dlib68 | mtcnn5
    threshold: float  # mtcnn5: MTCNN (ONet) confidence a face needs
    hog_threshold: float  # dlib68: the HOG detector's score a box needs
    predictor: str | None  # dlib68: a shape predictor .dat file; None: the one face-recognition-models ships
    batch_size: int  # mtcnn5: crops per detector call
    min_face_share: float  # smallest box side, share of the crop

    @property
    def n_points(self) -> int:
        if self.model not in MODELS:
            raise ValueError(f"unknown landmarks model {self.model!r}; expected one of {', '.join(MODELS)}")
        return MODELS[self.model]


class LandmarkModel(Protocol):
    """What the landmarks job calls: P points and a box + score per crop, NaN without a face."""

    n_points: int

    def detect(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def padded_input(crop: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """The crop as a detector sees it: resized to ``side``, with a black border of DETECT_BORDER.

    Returns (uint8 image, scale, border): a detector point p maps back to (p - border) / scale.
    """
    size = crop.shape[0]
    scale = side / size
    if size != side:
        crop = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR))
    border = round(side * DETECT_BORDER)
    return np.pad(crop, ((border, border), (border, border), (0, 0))), scale, float(border)


def detector_input(crop: np.ndarray) -> tuple[np.ndarray, float, float]:
    """MTCNN's input: ``padded_input`` at DETECT_SIDE as float32 (mtcnn is faster on float32)."""
    image, scale, border = padded_input(crop, DETECT_SIDE)
    return image.astype(np.float32), scale, border


def detect_landmarks(
    crops: np.ndarray,
    detector: Any,
    settings: LandmarkSettings | None = None,
    progress: bool = False,
    desc: str = "landmarks",
) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN's keypoints (N, 5, 2) and box + confidence (N, 5) of the main face in each square crop.

    ``crops``: (N, S, S, 3) uint8, all one size. ``detector``: mtcnn's ``MTCNN`` (or anything with
    its ``detect_faces``). The main face is the largest box with the threshold's confidence whose
    side is at least ``min_face_share`` of the crop; NaN rows where there is none.
    """
    settings = settings or LandmarkSettings.of(model="mtcnn5")
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


@dataclass
class Mtcnn5Landmarks:
    """``landmarks.model: mtcnn5``: MTCNN's five keypoints (``detect_landmarks``)."""

    detector: Any
    settings: LandmarkSettings
    n_points: int = 5

    def detect(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return detect_landmarks(crops, self.detector, self.settings)


def predictor_path(settings: LandmarkSettings) -> Path:
    """The 68-point predictor file: ``settings.predictor``, or the one in face-recognition-models
    (found without importing that package, whose ``__init__`` needs setuptools' pkg_resources)."""
    if settings.predictor:
        path = Path(settings.predictor)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                "landmarks model dlib68 needs the package face-recognition-models (pip install -e .), "
                "or landmarks.predictor set to a 68-point shape predictor .dat file"
            )
        path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"landmarks model dlib68: the shape predictor {path} does not exist")
    return path


class Dlib68Landmarks:
    """``landmarks.model: dlib68``: dlib's HOG face detector places the box, its 68-point shape
    predictor finds the points in it. The crop is resized to DLIB_SIDE with a black border
    (``padded_input``); the main face is the largest box scoring at least ``hog_threshold`` whose
    side is at least ``min_face_share`` of the crop."""

    n_points = 68

    def __init__(self, settings: LandmarkSettings) -> None:
        import dlib

        self.settings = settings
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path(settings)))

    def detect_one(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        size = crop.shape[0]
        image, scale, border = padded_input(np.ascontiguousarray(crop), DLIB_SIDE)
        rectangles, scores, _ = self.detector.run(image, 0, float(self.settings.hog_threshold))
        best, best_area = None, 0.0
        for rectangle, score in zip(rectangles, scores):
            side = min(rectangle.width(), rectangle.height()) / scale
            area = float(rectangle.area())
            if (
                score >= self.settings.hog_threshold
                and side >= self.settings.min_face_share * size
                and area > best_area
            ):
                best, best_area = (rectangle, score), area
        if best is None:
            return np.full((68, 2), np.nan, np.float32), np.full(5, np.nan, np.float32)
        rectangle, score = best
        shape = self.predictor(image, rectangle)
        points = np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float32)
        box = np.array([rectangle.left(), rectangle.top(), rectangle.right(), rectangle.bottom()], np.float32)
        return (points - border) / scale, np.array([*((box - border) / scale), score], dtype=np.float32)

    def detect(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = [self.detect_one(crop) for crop in np.asarray(crops)]
        if not found:
            return np.empty((0, 68, 2), np.float32), np.empty((0, 5), np.float32)
        return np.stack([points for points, _ in found]), np.stack([box for _, box in found])


def load_landmark_model(settings: LandmarkSettings) -> LandmarkModel:
    """The model ``settings.model`` names (imports dlib, or mtcnn and TensorFlow: once per job)."""
    if settings.n_points == 68:
        return Dlib68Landmarks(settings)
    from dfdetect.data.faces.detect import load_detector

    return Mtcnn5Landmarks(load_detector(), settings)
