"""Face landmarks per packed frame, and the face regions built from them.

The ``landmarks`` rule finds the main face's landmarks in every filled slot of a batch's frame
store with the model ``landmarks.model`` names, and writes, next to the store (``store/{batch}``):

- ``{prefix}.landmarks.npy``: float32 (videos, slots, P, 2), the model's P points as (x, y) in
  the store's pixel coordinates; NaN where the slot is empty or no face was found;
- ``{prefix}.landmark_boxes.npy``: float32 (videos, slots, 5), the face box the points belong to
  (x1, y1, x2, y2, store pixels) and the detector's score; NaN likewise.

Models:

- ``dlib68`` (the default): dlib's 68-point shape predictor (the iBUG 300-W points: jaw 0-16,
  brows 17-26, nose 27-35, eyes 36-47, mouth 48-67), the points SBI and the DFDC winner use.
  dlib's HOG face detector places the box on the crop (``Dlib68Landmarks``); the predictor file
  ships in the PyPI package ``face-recognition-models``. It was trained on iBUG 300-W, whose
  terms exclude commercial use: a commercial user picks ``mtcnn5`` or brings a predictor of
  their own (``predictor`` setting).
- ``mtcnn5``: MTCNN's five keypoints (eyes, nose, mouth corners), ``KEYPOINTS``.

A frame without a face never fails the batch. Everything built on landmarks has a **fallback**
for such frames: the DFDC face crops are face-centred, so a frame without landmarks uses a fixed
crop-centred face geometry (``fallback_keypoints`` and ``face_ellipse``: an upright ellipse
around the crop's centre, covering brows to chin, with five keypoints where a centred face has
them). The job's log and each model's ``train.json`` report the share of frames that need it.

Importing this module is cheap: dlib, mtcnn and TensorFlow are imported only by the detectors,
inside the landmarks job. Training jobs only read the arrays and draw the regions.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Protocol

import numpy as np
from PIL import Image
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.config import SectionSettings
from dfdetect.data.store import StorePaths
from dfdetect.layout import LANDMARK_FILES, BatchPaths

log = logging.getLogger(__name__)

MODELS = {"dlib68": 68, "mtcnn5": 5}  # landmarks.model -> points per face
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)

# The 68 points (iBUG 300-W order, as dlib returns them); "left" is the left of the image.
JAW, BROWS = np.arange(0, 17), np.arange(17, 27)
LEFT_EYE_68, RIGHT_EYE_68 = np.arange(36, 42), np.arange(42, 48)
NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68, CHIN_68 = 30, 48, 54, 8

# The fallback geometry, as shares of the crop side (x, y): a face centred in its crop, the way
# the DFDC face crops (and the demo's) are cut. The ellipse spans brows to chin and cheek to cheek.
FALLBACK_KEYPOINTS = np.array([(0.36, 0.42), (0.64, 0.42), (0.50, 0.57), (0.39, 0.72), (0.61, 0.72)], np.float32)
FALLBACK_ELLIPSE = {"centre": (0.50, 0.52), "radii": (0.34, 0.42)}

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
    """True where a (..., P, 2) keypoint array holds a detected face (no NaN)."""
    return ~np.isnan(keypoints).any(axis=(-1, -2))


def five_points(keypoints: np.ndarray) -> np.ndarray:
    """MTCNN's five keypoints (eye centres, nose tip, mouth corners) from 5 or 68 points."""
    points = np.asarray(keypoints, dtype=np.float32)
    if points.shape[-2] == 5:
        return points
    return np.stack(
        [
            points[..., LEFT_EYE_68, :].mean(axis=-2),
            points[..., RIGHT_EYE_68, :].mean(axis=-2),
            points[..., NOSE_TIP_68, :],
            points[..., MOUTH_LEFT_68, :],
            points[..., MOUTH_RIGHT_68, :],
        ],
        axis=-2,
    )


def _mirror_order_68() -> np.ndarray:
    """Index of each point's mirror image among the 68 (SBI's hflip, src/utils/sbi.py:201-228)."""
    order = np.arange(68)
    for first, last in ((0, 16), (17, 26), (31, 35), (48, 54), (55, 59), (60, 64), (65, 67)):
        order[first : last + 1] = order[first : last + 1][::-1]  # each run reverses in place
    order[36:40], order[40:42] = np.arange(45, 41, -1), (47, 46)  # the eyes swap sides
    order[42:46], order[46:48] = np.arange(39, 35, -1), (41, 40)
    return order


MIRROR_ORDER = {5: np.array([RIGHT_EYE, LEFT_EYE, NOSE, MOUTH_RIGHT, MOUTH_LEFT]), 68: _mirror_order_68()}


def mirror_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """The points of the horizontally flipped frame (``image[:, ::-1]``), relabelled left <-> right."""
    points = np.asarray(keypoints, dtype=np.float32)
    mirrored = points[..., MIRROR_ORDER[points.shape[-2]], :].copy()
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored


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


# SBI blends inside the hull of the 81-point dlib model (codeniko's: the 68 plus 13 on the forehead
# hairline, src/utils/sbi.py:162-172, README step 2). No 81-point model ships offline, so the 13 are
# drawn here from the 68: an arc over the brows from temple to temple, as high above the brows'
# centre as FOREHEAD_HEIGHT of the brows-to-chin distance (a face's forehead is about a third of
# its height, hairline to chin, so about half of brows-to-chin).
FOREHEAD_POINTS = 13
FOREHEAD_HEIGHT = 0.5


def forehead_points(points68: np.ndarray) -> np.ndarray:
    """(13, 2) float32 points on the forehead, left to right, from a face's 68 points."""
    points = np.asarray(points68, dtype=np.float32)
    brow_centre = points[BROWS].mean(axis=0)
    up = brow_centre - points[CHIN_68]
    height = float(np.linalg.norm(up))
    if height == 0:
        return np.repeat(brow_centre[None], FOREHEAD_POINTS, axis=0)
    up /= height
    across = np.array([-up[1], up[0]], dtype=np.float32)  # perpendicular, pointing to the image's right
    half_width = float(np.abs((points[JAW[-1]] - points[JAW[0]]) @ across)) / 2
    angles = np.linspace(np.pi, 0, FOREHEAD_POINTS)  # from the left temple over the top to the right
    return (
        brow_centre
        + np.cos(angles)[:, None] * half_width * across
        + np.sin(angles)[:, None] * FOREHEAD_HEIGHT * height * up
    ).astype(np.float32)


def with_forehead(points68: np.ndarray) -> np.ndarray:
    """(81, 2): the 68 points and the 13 forehead points (the 81-point model's layout after
    SBI's reorder_landmark, src/utils/sbi.py:189-194)."""
    return np.concatenate([np.asarray(points68, dtype=np.float32), forehead_points(points68)])


def _fill_hulls(size: int, groups: Iterable[np.ndarray]) -> np.ndarray:
    import cv2

    mask = np.zeros((size, size), dtype=np.uint8)
    for group in groups:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(group).astype(np.int32)), 1)
    return mask


def _components(points: np.ndarray) -> list[np.ndarray]:
    """The eight part hulls of Face X-ray's ``components`` mask (DeepFakeMask.py:108-122)."""
    p = points
    return [
        np.concatenate([p[0:9], p[17:18]]),  # right jaw (of the image's left)
        np.concatenate([p[8:17], p[26:27]]),
        np.concatenate([p[17:20], p[8:9]]),  # cheeks
        np.concatenate([p[24:27], p[8:9]]),
        np.concatenate([p[19:25], p[8:9]]),  # nose ridge
        np.concatenate([p[17:22], p[27:28], p[31:36], p[8:9]]),  # eyes
        np.concatenate([p[22:27], p[27:28], p[31:36], p[8:9]]),
        np.concatenate([p[27:31], p[31:36]]),  # nose
    ]


def _raised_brows(points: np.ndarray) -> np.ndarray:
    """Face X-ray's ``extended`` mask: brows moved up by half their distance to the upper eyelids
    (DeepFakeMask.py:137-156)."""
    p = np.asarray(points[:68], dtype=np.float32).copy()
    outer_left = (p[36] + (p[36] + p[0]) / 2) / 2
    outer_right = (p[45] + (p[16] + p[45]) / 2) / 2
    lids_left = np.stack([outer_left, p[36], p[37], p[38], p[39]])
    lids_right = np.stack([p[42], p[43], p[44], p[45], outer_right])
    p[17:22] += (p[17:22] - lids_left) / 2
    p[22:27] += (p[22:27] - lids_right) / 2
    return p


# SBI draws one of Face X-ray's four mask types per fake (src/utils/sbi.py:166-168 through
# bi_online_generation.py:24-37 of AlgoHunt/Face-Xray, the variant SBI's README recommends):
HULL_VARIANTS = ("dfl_full", "extended", "components", "facehull")


def hull_variant(points: np.ndarray, size: int, variant: str) -> np.ndarray:
    """uint8 (size, size) mask of one of Face X-ray's mask types on 68 (or 81) points."""
    p = np.asarray(points, dtype=np.float32)
    if variant == "facehull":  # the hull of every point (DeepFakeMask.py:174-181)
        return _fill_hulls(size, [p])
    if variant == "dfl_full":  # jaw with mouth, nose ridge, brows with eyes (DeepFakeMask.py:84-95)
        return _fill_hulls(
            size,
            [
                np.concatenate([p[0:17], p[48:68], p[0:1], p[8:9], p[16:17]]),
                np.concatenate([p[27:31], p[33:34]]),
                np.concatenate([p[17:27], p[0:1], p[27:28], p[16:17], p[33:34]]),
            ],
        )
    if variant == "components":
        return _fill_hulls(size, _components(p))
    if variant == "extended":
        return _fill_hulls(size, _components(_raised_brows(p)))
    raise ValueError(f"unknown hull variant {variant!r}; expected one of {', '.join(HULL_VARIANTS)}")


def face_hull(keypoints: np.ndarray | None, size: int) -> np.ndarray:
    """uint8 (size, size) mask of the face: for 68 points the hull of them and the forehead arc
    (SBI's 81-point hull), for five the hull of ``face_outline``; the crop-centred ellipse
    (``face_ellipse``) when ``keypoints`` is None or holds NaN, or the hull is empty."""
    if keypoints is None or not has_face(np.asarray(keypoints)):
        return face_ellipse(size)
    points = np.asarray(keypoints, dtype=np.float32)
    outline = with_forehead(points) if points.shape[0] == 68 else face_outline(points)
    mask = _fill_hulls(size, [outline])
    if not mask.any():  # degenerate keypoints (all in one spot, or off the crop)
        return face_ellipse(size)
    return mask


def sbi_region(keypoints: np.ndarray | None, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """SBI's face region for one fake, and its kind: with 68 points, 81 points (the forehead arc
    added) or, with p 0.25, the 68 alone (src/utils/sbi.py:164-165), under one of the four
    ``HULL_VARIANTS`` drawn uniformly; with five points the ``face_outline`` hull ("outline5");
    without landmarks the fallback ellipse ("ellipse")."""
    if keypoints is None or not has_face(np.asarray(keypoints)):
        return face_ellipse(size), "ellipse"
    points = np.asarray(keypoints, dtype=np.float32)
    if points.shape[0] != 68:
        return face_hull(points, size), "outline5"
    if rng.random() >= 0.25:
        points = with_forehead(points)
    variant = HULL_VARIANTS[int(rng.integers(len(HULL_VARIANTS)))]
    mask = hull_variant(points, size, variant)
    if not mask.any():
        return face_ellipse(size), "ellipse"
    return mask, variant


def face_box(keypoints: np.ndarray | None, size: int) -> np.ndarray:
    """(x1, y1, x2, y2) of the face: the landmarks' extent (68 points: jaw, brows and chin), or the
    fallback ellipse's box."""
    if keypoints is not None and np.asarray(keypoints).shape[0] == 68 and has_face(np.asarray(keypoints)):
        points = np.asarray(keypoints, dtype=np.float32)
        return np.array([*points.min(axis=0), *points.max(axis=0)], dtype=np.float32)
    (cx, cy), (rx, ry) = FALLBACK_ELLIPSE["centre"], FALLBACK_ELLIPSE["radii"]
    return np.array([cx - rx, cy - ry, cx + rx, cy + ry], dtype=np.float32) * np.float32(size)


def jaw_and_brows(points68: np.ndarray) -> np.ndarray:
    """The polygon of the jaw line and the brows (right to left), the DFDC winner's face outline
    for blackout_convex_hull (training/datasets/classifier_dataset.py:59)."""
    points = np.asarray(points68, dtype=np.float32)
    return points[[*range(17), *range(26, 16, -1)]]


# ------------------------------------------------------------------------------------------------
# Detection (the landmarks job)


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


# ------------------------------------------------------------------------------------------------
# Reading (the train job)


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
