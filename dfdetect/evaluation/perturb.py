"""Robustness perturbations: DeeperForensics-1.0's seven distortions at their five levels.

The kinds and levels are those of DeeperForensics-1.0 (Jiang et al., CVPR 2020),
``perturbation/distortions.py`` and ``get_distortion_parameter`` in
``perturbation/add_distortion_to_video.py`` of github.com/EndlessSora/DeeperForensics-1.0.
They are re-implemented here on RGB uint8 face crops with numpy, Pillow and scipy (the
reference uses OpenCV on BGR video frames):

=============  ====  ===================================  ==============================================
name           code  levels 1..5                          what is done
=============  ====  ===================================  ==============================================
saturation     CS    0.4, 0.3, 0.2, 0.1, 0.0              chroma (Cb, Cr of BT.601 YCbCr) scaled by the
                                                          level's factor, luma kept (0.0: grey image)
contrast       CC    0.85, 0.725, 0.6, 0.475, 0.35        pixel values multiplied by the factor
block          BW    16, 32, 48, 64, 80 blocks            grey (128) square blocks at random places;
                                                          see "block size" below
noise          GNC   variance 0.001 .. 0.05               white Gaussian noise of that variance added
                                                          to each of Y, Cb, Cr (on the 0..1 scale)
blur           GB    kernel 7, 9, 13, 17, 21              Gaussian blur, sigma = kernel / 6
pixelation     JPEG  x2, x3, x4, x5, x6                   downscale by the factor and back (bilinear)
compression    VC    JPEG quality 39, 30, 21, 14, 11      JPEG encode + decode (stands for H.264 at
                                                          CRF 30, 32, 35, 38, 40; see below)
=============  ====  ===================================  ==============================================

Level 0 is the identity for every kind. Differences from the reference, on purpose:

- saturation and noise: the reference converts with OpenCV's float YCrCb (whose chroma offset is
  0.5, not 128, on 0..255 input) and studio-swing scaling, which makes its noise about 16%
  stronger than the stated variance and shifts neutral chroma by a fraction of a grey level; here
  the stated factor and variance apply exactly, on full-range BT.601 YCbCr.
- results are rounded to the nearest grey level and clipped; the reference truncates
  (``astype(np.uint8)``), which wraps out-of-range values in its saturation change.
- block size: the reference places ``min(H, W) // 256 * level`` blocks of 8 px, which is no
  block at all on a 160 px crop. Here a crop is treated as a 256 px image: ``level`` blocks
  (16..80) of ``8 * min(H, W) / 256`` px (5 px on a 160 px crop, at least 1 px), so the occluded
  share (1.6% .. 7.8%) and the look do not depend on the crop size.
- blur kernels are in pixels of the frames given (the reference blurred 1080p frames, where a
  face is 200-400 px wide, so the same kernel is relatively stronger on a 160 px face crop).
- pixelation: the reference's level name is "JPEG", but its code resizes down and up with
  OpenCV's bilinear interpolation; Pillow's bilinear downscale here is antialiased.
- compression: the reference re-encodes the video with ffmpeg at CRF 30, 32, 35, 38, 40. Frames
  scored here are single crops, not a video stream, so each crop is JPEG-coded at the quality
  whose PSNR on face crops matches libx264's at that CRF (``benchmarks/jpeg_for_crf.py``
  measured it; see ``CRF_TO_JPEG_QUALITY``). On 160 px crops of a real face photo with drift and
  sensor noise, libx264 at CRF 30/32/35/38/40 gave 28.0/27.1/25.8/24.6/23.6 dB, matched by JPEG
  quality 45/34/23/15/11; on a demo video's crops 33.0/32.3/31.1/29.9/28.8 dB, matched by
  33/27/19/13/11. The qualities used are the means, 39/30/21/14/11 (Pillow's default 4:2:0
  chroma subsampling, like yuv420p). JPEG lacks H.264's inter-frame smearing and deblocking, so
  the match is in PSNR, not in the look of the artefacts.

Randomness (block positions, noise) comes from ``seed`` only: pass a per-video seed
(:func:`video_seed`) so that a video's perturbed frames do not depend on what else is scored.
No TensorFlow or Keras here.
"""

from __future__ import annotations

import hashlib
import io
from typing import Callable

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "CRF_TO_JPEG_QUALITY",
    "DEEPERFORENSICS_CODES",
    "LEVELS",
    "N_LEVELS",
    "PERTURBATIONS",
    "conditions",
    "parameter",
    "perturb_frames",
    "video_seed",
]

N_LEVELS = 5
# H.264 CRF levels of DeeperForensics-1.0 -> the JPEG quality used in their place (PSNR-matched).
CRF_TO_JPEG_QUALITY = {30: 39, 32: 30, 35: 21, 38: 14, 40: 11}
LEVELS: dict[str, tuple[float, ...]] = {
    "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),
    "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
    "block": (16, 32, 48, 64, 80),
    "noise": (0.001, 0.002, 0.005, 0.01, 0.05),
    "blur": (7, 9, 13, 17, 21),
    "pixelation": (2, 3, 4, 5, 6),
    "compression": tuple(CRF_TO_JPEG_QUALITY.values()),
}
PERTURBATIONS = tuple(LEVELS)
DEEPERFORENSICS_CODES = {
    "saturation": "CS",
    "contrast": "CC",
    "block": "BW",
    "noise": "GNC",
    "blur": "GB",
    "pixelation": "JPEG",
    "compression": "VC",
}

_BLOCK_GREY = 128
_BLOCK_REFERENCE = (8, 256)  # 8 px blocks on a 256 px image
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601
# RGB change per unit of (Cb, Cr) (the inverse BT.601 transform; Y adds to all three channels).
_RGB_PER_CHROMA = np.array([[0.0, -0.344136, 1.772], [1.402, -0.714136, 0.0]], dtype=np.float32)


def parameter(perturbation: str, level: int) -> float | None:
    """The distortion parameter of ``perturbation`` at ``level`` (1..5); None at level 0."""
    if perturbation not in LEVELS:
        raise ValueError(f"unknown perturbation {perturbation!r}; expected one of {', '.join(PERTURBATIONS)}")
    if not (isinstance(level, (int, np.integer)) and 0 <= level <= N_LEVELS):
        raise ValueError(f"perturbation level must be an integer 0..{N_LEVELS}, got {level!r}")
    return None if level == 0 else LEVELS[perturbation][int(level) - 1]


def conditions(perturbations: tuple[str, ...] = PERTURBATIONS) -> list[tuple[str, int]]:
    """Every perturbed (perturbation, level) pair, levels 1..5, in table order: the robustness grid."""
    for name in perturbations:
        parameter(name, 0)  # names the unknown perturbation, if any
    return [(name, level) for name in perturbations for level in range(1, N_LEVELS + 1)]


def video_seed(video_id: str, seed: int = 0) -> int:
    """A stable 63-bit seed for one video's perturbations (independent of scoring order)."""
    digest = hashlib.blake2b(f"{seed}:{video_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def perturb_frames(perturbation: str, level: int, frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """``frames`` (uint8, (N, H, W, 3) RGB) under ``perturbation`` at ``level``: a new uint8 array.

    Level 0 returns an unchanged copy. The same arguments give the same pixels.
    """
    value = parameter(perturbation, level)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if value is None or len(frames) == 0:
        return frames.copy()
    rng = np.random.default_rng([int(seed), PERTURBATIONS.index(perturbation), int(level)])
    return _FUNCTIONS[perturbation](frames, value, rng)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _saturation(frames: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    # Scaling Cb and Cr by f and converting back is Y + f * (RGB - Y): the transform is linear.
    pixels = frames.astype(np.float32)
    luma = (pixels @ _LUMA)[..., None]
    return _to_uint8(luma + np.float32(factor) * (pixels - luma))


def _contrast(frames: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(frames.astype(np.float32) * np.float32(factor))


def _block(frames: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    n, height, width, _ = frames.shape
    side = max(1, round(_BLOCK_REFERENCE[0] * min(height, width) / _BLOCK_REFERENCE[1]))
    side_y, side_x = min(side, height), min(side, width)
    tops = rng.integers(0, height - side_y, size=(n, int(count)), endpoint=True)
    lefts = rng.integers(0, width - side_x, size=(n, int(count)), endpoint=True)
    out = frames.copy()
    for frame, (frame_tops, frame_lefts) in enumerate(zip(tops, lefts)):
        for top, left in zip(frame_tops, frame_lefts):
            out[frame, top : top + side_y, left : left + side_x] = _BLOCK_GREY
    return out


def _noise(frames: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    # Noise added to Y, Cb and Cr (0..1 scale) is, in RGB, nY on every channel plus the chroma
    # noise through the inverse BT.601 transform.
    sigma = np.float32(255.0 * np.sqrt(variance))
    noise = rng.standard_normal(frames.shape, dtype=np.float32) * sigma  # (..., [Y, Cb, Cr])
    rgb_noise = noise[..., :1] + noise[..., 1:] @ _RGB_PER_CHROMA
    return _to_uint8(frames.astype(np.float32) + rgb_noise)


def _blur(frames: np.ndarray, kernel: float, rng: np.random.Generator) -> np.ndarray:
    # A kernel of `kernel` taps (radius (k - 1) / 2), sigma k / 6, mirrored borders: OpenCV's
    # GaussianBlur((k, k), k / 6) with its default BORDER_REFLECT_101.
    size = int(kernel)
    pixels = frames.astype(np.float32)
    for axis in (1, 2):
        pixels = gaussian_filter1d(pixels, sigma=size / 6.0, axis=axis, mode="mirror", radius=(size - 1) // 2)
    return _to_uint8(pixels)


def _pixelation(frames: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    _, height, width, _ = frames.shape
    small = (max(1, width // int(factor)), max(1, height // int(factor)))
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        image = Image.fromarray(frame).resize(small, Image.Resampling.BILINEAR)
        out[index] = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
    return out


def _compression(frames: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=int(quality))
        out[index] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


_FUNCTIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "saturation": _saturation,
    "contrast": _contrast,
    "block": _block,
    "noise": _noise,
    "blur": _blur,
    "pixelation": _pixelation,
    "compression": _compression,
}
