"""Self-blended images (SBI): fakes made on the fly from real frames, for training on real faces.

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022
(github.com/mapooon/SelfBlendedImages, ``src/utils/sbi.py`` and ``src/utils/blend.py``),
written here for the store's square crops, five MTCNN keypoints and albumentations 2.x:

1. source-target augmentation: one copy of the frame gets colour jitter (RGBShift +-20 p 0.3,
   HueSaturationValue p 0.3, RandomBrightnessContrast +-0.1 p 0.3, SBI's limits) and then either
   a downscale by 2-4 (nearest down, linear up) or a sharpen; the copy is the source or, with
   p 0.5, the target (the other one stays as stored);
2. the mask: the face hull from the keypoints (``landmarks.face_hull``, widened from five points
   to brows-to-chin), or the crop-centred ellipse when the frame has none; source and mask move
   together by a random affine (translate x 3%, y 1.5%, scale 0.95-1.05), then the mask alone is
   deformed elastically (SBI's alpha 50, sigma 7 at 256 px, scaled; at 80 px, see ``elastic_side``) and blurred
   twice (``blend_mask``, SBI's get_blend_mask);
3. the blend ``mask * source + (1 - mask) * target``, the mask scaled by a ratio drawn from
   {0.25, 0.5, 0.75, 1, 1, 1} (SBI's dynamic_blend).

After blending, the fake and its real frame get the same post-augmentation (``post_pipeline``:
SBI's colour jitter, JPEG quality 40-100 p 0.5, and a horizontal flip), so the pair differs
only by the blend. Numpy, OpenCV and albumentations only: this runs in the loader's workers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfdetect.data.landmarks import face_hull
from dfdetect.training.augment import seed_pipeline, single_threaded_opencv

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
ELASTIC_REFERENCE_SIDE = 256  # SBI's elastic alpha/sigma are pixels of crops about this size
ELASTIC_SIDE = 80


def source_target_pipeline(image_size: int) -> Any:
    import albumentations as A
    import cv2

    return A.Compose(
        [
            A.RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
            A.HueSaturationValue(
                hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3), p=0.3
            ),
            A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=0.3),
            A.OneOf(
                [
                    A.Downscale(
                        scale_range=(0.25, 0.5),
                        interpolation_pair={"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR},
                        p=1,
                    ),
                    A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1),
                ],
                p=1,
            ),
        ]
    )


def affine_pipeline(image_size: int) -> Any:
    import albumentations as A

    return A.Compose(
        [
            A.Affine(
                translate_percent={"x": (-0.03, 0.03), "y": (-0.015, 0.015)},
                scale=(0.95, 1 / 0.95),
                fit_output=False,
                p=1,
            )
        ]
    )


def elastic_side(image_size: int) -> int:
    """The side the mask is deformed at: the blur after it removes detail finer than 1/80 of the
    crop, so larger crops are deformed at 80 px and resized back (4x fewer random draws at 160)."""
    return min(int(image_size), ELASTIC_SIDE)


def elastic_pipeline(image_size: int) -> Any:
    import albumentations as A

    factor = elastic_side(image_size) / ELASTIC_REFERENCE_SIDE
    return A.Compose([A.ElasticTransform(alpha=50 * factor, sigma=max(1.0, 7 * factor), p=1)])


def post_pipeline(image_size: int) -> Any:
    """SBI's get_transforms (applied to the fake and its real frame alike) plus its flip."""
    import albumentations as A

    return A.Compose(
        [
            A.RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
            A.HueSaturationValue(
                hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3), p=0.3
            ),
            A.RandomBrightnessContrast(brightness_limit=(-0.3, 0.3), contrast_limit=(-0.3, 0.3), p=0.3),
            A.ImageCompression(quality_range=(40, 100), p=0.5),
            A.HorizontalFlip(p=0.5),
        ]
    )


def blend_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's get_blend_mask: float32 (H, W) in [0, 1] with soft edges.

    The mask is resized to a random 192-256 px working size (a random aspect change), blurred
    and cut at 1 (which shrinks it), blurred again (which softens and widens the edge), scaled to
    a maximum of 1 and resized back.
    """
    import cv2

    height, width = mask.shape
    work = cv2.resize(mask.astype(np.float32), (int(rng.integers(192, 257)), int(rng.integers(192, 257))))
    first = int(rng.choice(np.arange(5, 26, 2)))
    second = int(rng.choice(np.arange(5, 26, 2)))
    blurred = cv2.GaussianBlur(work, (first, first), 0)
    if blurred.max() <= 0:
        return np.zeros((height, width), dtype=np.float32)
    blurred = blurred / blurred.max()
    blurred[blurred < 1] = 0
    blurred = cv2.GaussianBlur(blurred, (second, second), float(rng.integers(5, 46)))
    blurred = blurred / max(float(blurred.max()), 1e-12)
    return cv2.resize(blurred, (width, height)).astype(np.float32)


@dataclass
class SelfBlend:
    """One self-blended fake and what it was made of (all uint8 (H, W, 3) but the masks)."""

    fake: np.ndarray
    target: np.ndarray  # the real frame the fake is blended into (as the post-augmentation gets it)
    source: np.ndarray  # the warped, augmented copy whose face is blended in
    mask: np.ndarray  # float32 (H, W): the blend weight of the source at each pixel
    region: np.ndarray  # uint8 (H, W): the face hull (or fallback ellipse) before warping
    ratio: float
    used_landmarks: bool


class SelfBlender:
    """Make SBI fakes from single uint8 frames; safe to share between worker threads, and picklable."""

    def __init__(self, image_size: int) -> None:
        self.image_size = int(image_size)
        self._local = threading.local()

    def __getstate__(self) -> dict:  # pickled into the loader's worker processes: pipelines are rebuilt there
        return {key: value for key, value in self.__dict__.items() if key != "_local"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def warm_up(self) -> None:
        """Build this thread's pipelines now (importing albumentations) rather than on the first frame."""
        self._pipelines()

    def _pipelines(self) -> dict[str, Any]:
        pipelines = getattr(self._local, "pipelines", None)
        if pipelines is None:
            single_threaded_opencv()
            size = self.image_size
            pipelines = self._local.pipelines = {
                "source": source_target_pipeline(size),
                "affine": affine_pipeline(size),
                "elastic": elastic_pipeline(size),
                "post": post_pipeline(size),
            }
        return pipelines

    def blend(
        self,
        image: np.ndarray,
        keypoints: np.ndarray | None,
        rng: np.random.Generator,
        ratio: float | None = None,
        split: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SelfBlend:
        """A fake from ``image`` (not changed). ``ratio`` fixes the blend ratio (tests). ``split``:
        ``split(image, rng)``'s result when the pair's real frame made it already (``rng`` then
        continues from there), so that the source-target augmentation runs once per pair."""
        import cv2

        pipelines = self._pipelines()
        size = image.shape[0]
        region = face_hull(keypoints, size)
        used_landmarks = keypoints is not None and not np.isnan(keypoints).any()
        target, source = self.split(image, rng) if split is None else split
        seed_pipeline(pipelines["affine"], rng)
        moved = pipelines["affine"](image=source, mask=region)
        source, warped = moved["image"], moved["mask"]
        seed_pipeline(pipelines["elastic"], rng)
        side = elastic_side(size)
        small = warped.astype(np.float32) if side == size else cv2.resize(warped.astype(np.float32), (side, side))
        small = pipelines["elastic"](image=small)["image"]
        warped = small if side == size else cv2.resize(small, (size, size))
        mask = blend_mask(warped, rng)
        if ratio is None:
            ratio = float(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
        mask *= np.float32(ratio)
        # mask * source + (1 - mask) * target, rounded to uint8 (OpenCV: one pass, no float copies)
        fake = cv2.blendLinear(source, target, mask, np.float32(1) - mask)
        return SelfBlend(fake, target, source, mask, region, float(ratio), bool(used_landmarks))

    def split(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(target, source): copies of ``image``, one of them source-target augmented (p 0.5 each)."""
        pipeline = self._pipelines()["source"]
        target, source = image.copy(), image.copy()
        seed_pipeline(pipeline, rng)
        if rng.random() < 0.5:
            source = pipeline(image=source)["image"]
        else:
            target = pipeline(image=target)["image"]
        return target, source

    def target_of(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The real frame of a pair: what ``blend`` with the same ``rng`` blends into (the stored
        frame, or with p 0.5 its source-target augmented copy, as SBI returns it)."""
        return self.split(image, rng)[0]

    def post(
        self, image: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """SBI's post-augmentation; the same ``rng`` state gives a pair the same transform."""
        pipeline = self._pipelines()["post"]
        seed_pipeline(pipeline, rng)
        if mask is None:
            return pipeline(image=image)["image"], None
        result = pipeline(image=image, mask=mask)
        return result["image"], result["mask"]
