"""Training-time augmentation presets: uint8 face crops in, uint8 face crops out.

``models.NAME.augment`` picks a preset (``true`` is ``flip``, ``false`` is ``none``):

- ``none``: the frames as stored.
- ``flip``: a horizontal flip with probability 0.5.
- ``dfdc_winner``: the augmentation of the first-place DFDC solution (Selim Seferbekov,
  github.com/selimsef/dfdc_deepfake_challenge; file:line references are to its ``training/``):
  ``pipelines/train_classifier.py:45-61`` (``create_train_transforms``) in albumentations 2.x,
  after its landmark cutouts (``datasets/classifier_dataset.py:270-276``) when landmarks are given.

Every draw comes from the generator the caller passes; the loader makes one per (seed, epoch,
sample), so a run is repeatable whatever the worker count or batch order. Nothing here imports
Keras or TensorFlow: this runs in the loader's workers.

Departures from the winner, and why:
- Its third cutout (p 0.1 of the rest: half of the frame's difference mask to the original,
  classifier_dataset.py:277-288) needs per-frame difference masks that the data does not have.
- Frames without landmarks: the winner skips the part cutout where its MTCNN landmarks file is
  missing (classifier_dataset.py:272); here such frames take the fallback geometry's keypoints
  (``dfdetect.data.landmarks.fallback_keypoints``), the face crops being face-centred.
- The part cutout draws a thick line (width 2 + 2 x the winner's dilation) instead of dilating a
  2 px line with a cross-shaped element as often (classifier_dataset.py:92-128): a round band of
  the same half-width, drawn in one pass.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any, Callable

import numpy as np

from dfdetect.data.landmarks import (
    LEFT_EYE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE,
    RIGHT_EYE,
    fallback_keypoints,
    five_points,
    has_face,
    jaw_and_brows,
)

PRESETS = ("none", "flip", "dfdc_winner")
CUTOUT_P = 0.7  # remove_landmark on 70% of the frames (classifier_dataset.py:272)
BLACKOUT_HULL_P = 0.2  # else blackout_convex_hull on 20% (classifier_dataset.py:275): 0.3 x 0.2 = 6% of all


def preset_name(value: bool | str | None) -> str:
    """The preset a config value means: booleans are the old switch (true = flip, false = none)."""
    if value is True:
        return "flip"
    if value is False or value is None:
        return "none"
    if value not in PRESETS:
        raise ValueError(f"unknown augment preset {value!r}; expected one of {', '.join(PRESETS)} (or true/false)")
    return str(value)


def sample_rng(seed: int, epoch: int, sample: int, *more: int) -> np.random.Generator:
    """The generator of one training sample in one epoch (independent of batches and workers)."""
    return np.random.default_rng([int(seed), int(epoch), int(sample), *map(int, more)])


def seed_pipeline(pipeline: Any, rng: np.random.Generator) -> None:
    """Point an albumentations Compose (and every transform in it) at draws from ``rng``."""
    pipeline.set_random_state(np.random.default_rng(rng.integers(2**63)), random.Random(int(rng.integers(2**63))))


def _classic_fancy_pca() -> Any:
    """AlexNet's "fancy PCA" as albumentations 0.4 (the winner's version) did it.

    One colour offset for the whole image, ``eigenvectors @ (alpha * eigenvalues)`` of the pixels'
    RGB covariance (alpha ~ N(0, 0.1) per component), added to every pixel. albumentations 2.x's
    FancyPCA instead scales each pixel's deviation from the mean (a different transform) and
    costs about 3 ms per 160 px crop; this one estimates the covariance from every 4th pixel
    (the colour statistics of a face crop do not need all of them) and costs about 0.1 ms.
    """
    import albumentations as A

    class ClassicFancyPCA(A.FancyPCA):
        def apply(self, img: np.ndarray, alpha_vector: np.ndarray, **params: Any) -> np.ndarray:
            pixels = img.reshape(-1, img.shape[-1])[::4].astype(np.float32) / 255.0
            eig_vals, eig_vecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
            order = eig_vals[::-1].argsort()
            offset = eig_vecs[:, order] @ (alpha_vector * eig_vals[order]) * 255.0
            return np.clip(img.astype(np.float32) + offset.astype(np.float32), 0, 255).astype(np.uint8)

    return ClassicFancyPCA(alpha=0.1, p=0.5)  # p: its weight in OneOf, equal to its neighbours' (as in the winner)


def single_threaded_opencv() -> None:
    """Keep OpenCV to the calling thread, as the winner's training script does
    (``cv2.setNumThreads(0)``): the loader's workers are the parallelism, and OpenCV's own thread
    pool would compete with them and with the model's threads for the same cores."""
    import cv2

    cv2.setNumThreads(0)


def dfdc_winner_pipeline(image_size: int) -> Any:
    """The winner's ``create_train_transforms`` (train_classifier.py:45-61) in albumentations 2.x terms.

    Differences, each forced by the data or the library version:
    - GaussNoise: the winner's albumentations 0.4 default ``var_limit=(10, 50)`` (uint8 variance)
      is std 3.2-7.1 grey levels, ``std_range`` (0.0124, 0.0277) of 255 here (2.x's own default
      is ten times stronger).
    - IsotropicResize + PadIfNeeded (train_classifier.py:51-56) are left out: IsotropicResize returns
      an image whose longer side is the model's size unchanged (transforms/albu.py:11-12), and the
      store's crops are at the model's size, so both are no-ops here.
    - ShiftScaleRotate (train_classifier.py:59; deprecated in 2.x, whose version scales x and y
      apart) becomes ``Affine`` with the same ranges and one scale for both axes (``keep_ratio``), as
      albumentations 0.4's ShiftScaleRotate drew it: shift 10% per axis, scale 0.8-1.2, rotate 10
      degrees, constant black border.
    - FancyPCA: the classic transform of albumentations 0.4 (``_classic_fancy_pca``).
    """
    import albumentations as A
    import cv2

    single_threaded_opencv()
    return A.Compose(
        [
            A.ImageCompression(quality_range=(60, 100), p=0.5),
            A.GaussNoise(std_range=(math.sqrt(10) / 255, math.sqrt(50) / 255), p=0.1),
            A.GaussianBlur(blur_limit=(3, 3), p=0.05),
            A.HorizontalFlip(p=0.5),
            A.OneOf([A.RandomBrightnessContrast(), _classic_fancy_pca(), A.HueSaturationValue()], p=0.7),
            A.ToGray(p=0.2),
            A.Affine(
                translate_percent=(-0.1, 0.1),
                scale=(0.8, 1.2),
                keep_ratio=True,
                rotate=(-10, 10),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=0.5,
            ),
        ]
    )


# ------------------------------------------------------------------------------------------------
# Face-part cutout (the winner's remove_eyes / remove_mouth / remove_nose)


def part_line(part: str, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(start, end, half-width) of the band that blacks out ``part`` (eyes | mouth | nose).

    As in the winner: the eyes are the line between the two eyes, the nose the line from the
    nose tip to the eyes' midpoint, both widened by a quarter of the inter-eye distance on each
    side; the mouth is the line between its corners, widened by a third of the mouth's width.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    eye_distance = float(np.linalg.norm(points[RIGHT_EYE] - points[LEFT_EYE]))
    if part == "eyes":
        return points[LEFT_EYE], points[RIGHT_EYE], int(eye_distance // 4)
    if part == "nose":
        return points[NOSE], (points[LEFT_EYE] + points[RIGHT_EYE]) / 2, int(eye_distance // 4)
    if part == "mouth":
        mouth_width = float(np.linalg.norm(points[MOUTH_RIGHT] - points[MOUTH_LEFT]))
        return points[MOUTH_LEFT], points[MOUTH_RIGHT], int(mouth_width // 3)
    raise ValueError(f"unknown face part {part!r}")


def black_out_part(image: np.ndarray, part: str, keypoints: np.ndarray) -> np.ndarray:
    """Black out one face part in place: a thick line (width 2 + 2 x half-width, round ends)."""
    import cv2

    start, end, half_width = part_line(part, keypoints)
    target = image if image.flags.c_contiguous else np.ascontiguousarray(image)
    cv2.line(
        target,
        tuple(int(round(v)) for v in start),
        tuple(int(round(v)) for v in end),
        (0, 0, 0),
        thickness=2 + 2 * half_width,
    )  # drawn straight into the frame: no mask, no second pass
    if target is not image:
        image[...] = target
    return image


def choose_part(rng: np.random.Generator) -> str | None:
    """The winner's remove_landmark: eyes (p 0.5), else the mouth (0.25), else the nose (0.125)."""
    for part in ("eyes", "mouth", "nose"):
        if rng.random() < 0.5:
            return part
    return None


def blackout_convex_hull(image: np.ndarray, points68: np.ndarray, rng: np.random.Generator) -> str:
    """The winner's blackout_convex_hull (classifier_dataset.py:54-85), in place: black out one
    half (upper, lower, left or right of its centroid) of the polygon of the jaw line and brows.
    Returns which half."""
    import cv2

    height, width = image.shape[:2]
    face = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(face, [np.round(jaw_and_brows(points68)).astype(np.int32)], 1)
    ys, xs = np.nonzero(face)
    if ys.size == 0:
        return "none"
    y, x = int(ys.mean()), int(xs.mean())
    first = rng.random() > 0.5
    if rng.random() > 0.5:  # the other half is cleared from the polygon: this one is blacked out
        if first:
            face[:y, :], half = 0, "lower"
        else:
            face[y:, :], half = 0, "upper"
    elif first:
        face[:, :x], half = 0, "right"
    else:
        face[:, x:], half = 0, "left"
    image[face > 0] = 0
    return half


def face_part_cutout(image: np.ndarray, keypoints: np.ndarray | None, rng: np.random.Generator) -> str | None:
    """The winner's cutouts (classifier_dataset.py:270-276), in place: with p 0.7 one face part
    (``choose_part``) on the five keypoints (of 68 points, or the fallback's without landmarks),
    else with p 0.2 ``blackout_convex_hull`` on a frame's 68 points (frames without them skip it,
    as the winner's does when dlib finds no face). Returns what was blacked out (or None)."""
    if rng.random() < CUTOUT_P:
        found = keypoints is not None and bool(has_face(np.asarray(keypoints)))
        points = five_points(keypoints) if found else fallback_keypoints(image.shape[0])
        part = choose_part(rng)
        if part is not None:
            black_out_part(image, part, points)
        return part
    if rng.random() < BLACKOUT_HULL_P and keypoints is not None and len(keypoints) == 68 and has_face(keypoints):
        return f"hull_{blackout_convex_hull(image, keypoints, rng)}"
    return None


# ------------------------------------------------------------------------------------------------
# The augmenter the loader calls


class Augmenter:
    """Apply one preset to single frames; safe to share between the loader's worker threads.

    ``cutout``: with ``dfdc_winner``, add the cutouts before the pipeline (the winner cut out parts
    of the stored crop, then augmented).
    """

    def __init__(self, preset: str | bool, image_size: int, cutout: bool = True) -> None:
        self.preset = preset_name(preset)
        self.image_size = int(image_size)
        self.cutout = bool(cutout) and self.preset == "dfdc_winner"
        self._local = threading.local()  # one albumentations pipeline (and random state) per thread
        self._factory: Callable[[int], Any] | None = dfdc_winner_pipeline if self.preset == "dfdc_winner" else None

    @property
    def active(self) -> bool:
        return self.preset != "none"

    def _pipeline(self) -> Any:
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = self._factory(self.image_size)
        return pipeline

    def __call__(
        self,
        image: np.ndarray,
        rng: np.random.Generator,
        keypoints: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(augmented image, mask moved with it). ``image`` (H, W, 3) uint8 may be changed in place.

        ``keypoints``: the frame's 68 or 5 points as the frame is now (None: no landmarks, the
        fallback's). ``mask`` (H, W) follows the geometric transforms (for the training-samples figure).
        """
        if self.preset == "none":
            return image, mask
        if self.preset == "flip":
            if rng.random() < 0.5:
                image = image[:, ::-1]
                mask = None if mask is None else mask[:, ::-1]
            return image, mask
        if self.cutout:
            face_part_cutout(image, keypoints, rng)
        pipeline = self._pipeline()
        seed_pipeline(pipeline, rng)
        if mask is None:
            return pipeline(image=image)["image"], None
        result = pipeline(image=image, mask=mask)
        return result["image"], result["mask"]
