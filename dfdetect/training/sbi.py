"""Self-blended images (SBI): fakes made on the fly from real frames, for training on real faces.

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022
(github.com/mapooon/SelfBlendedImages; file:line references are to its ``src/``), written here
for the store's square crops, 68 (or 5) landmarks and albumentations 2.x:

1. source-target augmentation (``source_target_pipeline``, utils/sbi.py:110-123): one copy of the
   frame gets RGBShift +-20 (p 0.3), HueSaturationValue and RandomBrightnessContrast +-0.1 (both
   p 1), then either a downscale by 2 or 4 (nearest down, linear up; utils/funcs.py:113-127) or a
   sharpen; the copy is the source or, with p 0.5, the target (utils/sbi.py:175-179);
2. the mask (utils/sbi.py:162-172): with 68 landmarks, the hull of the 81-point face (the 68 and
   a forehead arc) or, p 0.25, of the 68 alone, under one of Face X-ray's four mask types
   (``dfdetect.data.landmarks.sbi_region``); with five keypoints, their widened outline; without
   landmarks, the crop-centred ellipse. Source and mask move together by a random affine
   (translate x 3%, y 1.5%, scale 0.95-1.05, utils/sbi.py:139-144), then the mask alone is
   deformed elastically (alpha 50, sigma 7, utils/sbi.py:146-151, scaled, see ``elastic_side``)
   and blurred twice (``blend_mask``, utils/blend.py:30-47);
3. the blend ``mask * source + (1 - mask) * target``, the mask scaled by a ratio drawn from
   {0.25, 0.5, 0.75, 1, 1, 1} (utils/blend.py:22-28).

After blending, the fake and its real frame get the same post-augmentation (``SelfBlender.post``):
SBI's colour jitter and JPEG quality 40-100 (utils/sbi.py:126-136), a horizontal flip (p 0.5,
utils/sbi.py:77-79) and the crop-margin jitter (``crop_jitter``, utils/funcs.py:49-89 and
utils/sbi.py:91-96), so the pair differs only by the blend. Numpy, OpenCV and albumentations
only: this runs in the loader's workers.

Departures from the reference, and why:
- The reference cuts a wide crop around the landmarks (utils/sbi.py:81), blends on it, then crops
  the detector's face box plus a random 5-20% of its side per side (utils/funcs.py:54-57,75-79;
  a fixed 12.5% when validating, 80-84). The store holds the crop a model is scored on, so the
  jitter moves each side of the stored crop by -7.5..+7.5% of the face box (the same spread around
  the same mean), and a side moved outwards stops at the crop's edge, as the reference's does at
  the frame's edge (utils/funcs.py:86-89).
- The flip comes after the blend (the reference flips the frame and its landmarks before): the
  pair shares it, so the fakes are the same; the landmarks that later steps use flip with it.
- 81 landmarks: no 81-point model ships offline, so the 13 forehead points are drawn from the 68
  (``dfdetect.data.landmarks.forehead_points``).
- The elastic deformation runs at up to 80 px (``elastic_side``), the blur after it removes finer
  detail anyway.
- A blend mask that comes out empty (the reference divides by its zero maximum,
  utils/blend.py:41) is drawn again, and after ``MASK_TRIES`` draws the unwarped region is used:
  a "fake" identical to its real frame would teach the model noise.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfdetect.data.landmarks import face_box, mirror_keypoints, sbi_region
from dfdetect.training.augment import seed_pipeline, single_threaded_opencv

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
ELASTIC_REFERENCE_SIDE = 256  # SBI's elastic alpha/sigma are pixels of crops about this size
ELASTIC_SIDE = 80
CROP_JITTER = 0.075  # each side of the crop moves by up to this share of the face box (utils/funcs.py:54-79)
MASK_TRIES = 3  # draws of the warp before an empty blend mask falls back to the unwarped region
MIN_MASK = 1e-3  # a blend mask whose maximum is below this counts as empty


def source_target_pipeline(image_size: int) -> Any:
    """SBI's get_source_transforms (utils/sbi.py:110-123)."""
    import albumentations as A
    import cv2

    def downscale(scale: float) -> Any:  # RandomDownScale: by 2 or 4, nearest down, linear up (funcs.py:117-127)
        pair = {"downscale": cv2.INTER_NEAREST, "upscale": cv2.INTER_LINEAR}
        return A.Downscale(scale_range=(scale, scale), interpolation_pair=pair, p=0.5)

    return A.Compose(
        [
            A.RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
            A.HueSaturationValue(
                hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3), p=1
            ),
            A.RandomBrightnessContrast(brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1), p=1),
            # OneOf weighs by p: the downscale (by 2 or by 4, half each) or the sharpen, half each
            A.OneOf([downscale(0.5), downscale(0.25), A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1)], p=1),
        ]
    )


def affine_pipeline(image_size: int) -> Any:
    """SBI's randaffine, its affine part (utils/sbi.py:140-144)."""
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
    """SBI's get_transforms (utils/sbi.py:126-136), applied to the fake and its real frame alike."""
    import albumentations as A

    return A.Compose(
        [
            A.RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
            A.HueSaturationValue(
                hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3), p=0.3
            ),
            A.RandomBrightnessContrast(brightness_limit=(-0.3, 0.3), contrast_limit=(-0.3, 0.3), p=0.3),
            A.ImageCompression(quality_range=(40, 100), p=0.5),
        ]
    )


def blend_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's get_blend_mask (utils/blend.py:30-47): float32 (H, W) in [0, 1] with soft edges.

    The mask is resized to a random 192-256 px working size (a random aspect change), blurred
    and cut at 1 (which shrinks it), blurred again (which softens and widens the edge), scaled to
    a maximum of 1 and resized back. All zeros when the mask is empty.
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


def crop_window(box: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the jittered crop: each side of the ``size`` crop moved by a uniform
    -CROP_JITTER..+CROP_JITTER of the face ``box``'s width (left, right) or height (top, bottom),
    outwards moves stopping at the crop's edge; at least half the crop is kept."""
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    left, top, right, bottom = rng.uniform(-CROP_JITTER, CROP_JITTER, 4) * np.array([width, height, width, height])
    x1, y1 = max(0, int(round(left))), max(0, int(round(top)))
    x2, y2 = min(size, int(round(size - right))), min(size, int(round(size - bottom)))
    if x2 - x1 < size // 2 or y2 - y1 < size // 2:
        return 0, 0, size, size
    return x1, y1, x2, y2


def crop_jitter(
    image: np.ndarray, window: tuple[int, int, int, int], mask: np.ndarray | None, keypoints: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Cut ``window`` and resize it back to the crop's side (linear, utils/sbi.py:95-96); the mask
    (nearest) and the keypoints follow."""
    import cv2

    size = image.shape[0]
    x1, y1, x2, y2 = window
    if (x1, y1, x2, y2) == (0, 0, size, size):
        return image, mask, keypoints
    image = cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)
    if mask is not None:
        mask = cv2.resize(mask[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_NEAREST)
    if keypoints is not None:
        scale = np.array([size / (x2 - x1), size / (y2 - y1)], dtype=np.float32)
        keypoints = (np.asarray(keypoints, dtype=np.float32) - np.array([x1, y1], np.float32)) * scale
    return image, mask, keypoints


@dataclass
class SelfBlend:
    """One self-blended fake and what it was made of (all uint8 (H, W, 3) but the masks)."""

    fake: np.ndarray
    target: np.ndarray  # the real frame the fake is blended into (as the post-augmentation gets it)
    source: np.ndarray  # the warped, augmented copy whose face is blended in
    mask: np.ndarray  # float32 (H, W): the blend weight of the source at each pixel
    region: np.ndarray  # uint8 (H, W): the face region before warping
    ratio: float
    used_landmarks: bool
    hull: str  # the region's kind: a landmarks.HULL_VARIANTS name, "outline5" or "ellipse"


@dataclass
class PostResult:
    """A frame after SBI's post-augmentation, with its mask and landmarks moved alike."""

    image: np.ndarray
    mask: np.ndarray | None
    keypoints: np.ndarray | None


class SelfBlender:
    """Make SBI fakes from single uint8 frames; safe to share between worker threads."""

    def __init__(self, image_size: int) -> None:
        self.image_size = int(image_size)
        self._local = threading.local()

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

    def _warped_mask(self, source: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> tuple:
        """(source moved by the affine, its soft blend mask): SBI's randaffine + get_blend_mask."""
        import cv2

        pipelines = self._pipelines()
        size = source.shape[0]
        seed_pipeline(pipelines["affine"], rng)
        moved = pipelines["affine"](image=source, mask=region)
        moved_source, warped = moved["image"], moved["mask"]
        seed_pipeline(pipelines["elastic"], rng)
        side = elastic_side(size)
        small = warped.astype(np.float32) if side == size else cv2.resize(warped.astype(np.float32), (side, side))
        small = pipelines["elastic"](image=small)["image"]
        warped = small if side == size else cv2.resize(small, (size, size))
        return moved_source, blend_mask(warped, rng)

    def blend(
        self,
        image: np.ndarray,
        keypoints: np.ndarray | None,
        rng: np.random.Generator,
        ratio: float | None = None,
        split: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SelfBlend:
        """A fake from ``image`` (not changed). ``keypoints``: 68 or 5 points, or None (the
        fallback). ``ratio`` fixes the blend ratio (tests). ``split``: ``split(image, rng)``'s
        result when the pair's real frame made it already (``rng`` then continues from there),
        so that the source-target augmentation runs once per pair."""
        import cv2

        target, source = self.split(image, rng) if split is None else split
        region, hull = sbi_region(keypoints, image.shape[0], rng)
        used_landmarks = hull != "ellipse"
        for _ in range(MASK_TRIES):
            moved, mask = self._warped_mask(source, region, rng)
            if mask.max() >= MIN_MASK:
                break
        else:  # the warp lost the region every time: blend it where it is
            moved, mask = source, blend_mask(region, rng)
        if ratio is None:
            ratio = float(BLEND_RATIOS[int(rng.integers(len(BLEND_RATIOS)))])
        mask *= np.float32(ratio)
        # mask * source + (1 - mask) * target, rounded to uint8 (OpenCV: one pass, no float copies)
        fake = cv2.blendLinear(moved, target, mask, np.float32(1) - mask)
        return SelfBlend(fake, target, moved, mask, region, float(ratio), bool(used_landmarks), hull)

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
        self,
        image: np.ndarray,
        rng: np.random.Generator,
        mask: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
    ) -> PostResult:
        """SBI's post-augmentation: colour and JPEG, the flip, the crop-margin jitter scaled by the
        face box of ``keypoints`` (the fallback's box without). The same ``rng`` state gives a
        pair the same transform; ``mask`` and ``keypoints`` move with the frame."""
        pipeline = self._pipelines()["post"]
        size = image.shape[0]
        box = face_box(keypoints, size)
        seed_pipeline(pipeline, rng)
        image = pipeline(image=image)["image"]
        if rng.random() < 0.5:
            image = np.ascontiguousarray(image[:, ::-1])
            mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
            keypoints = None if keypoints is None else mirror_keypoints(keypoints, size)
        image, mask, keypoints = crop_jitter(image, crop_window(box, size, rng), mask, keypoints)
        return PostResult(image, mask, keypoints)
