"""The kinds of fakes (``MANIPULATIONS``), each made from the original's own face track and leaving its own trace."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from PIL import Image

from dfdetect.data.demo.render import (
    CANVAS_FIELD,
    Affine,
    Identity,
    Track,
    aligned_donor,
    frame_blocks,
    noise,
    render_identity,
    sample_identity,
    to_uint8,
    warp_all,
)
from dfdetect.data.demo.spec import DemoSpec

_EXPRESSION_STEPS = 5  # poses of a `reenact` fake between its two expressions


_COLOUR_SHIFT = (18.0, 40.0)  # length of a `colour` fake's RGB shift of the inner face, in grey levels


@dataclass(frozen=True)
class SwapStrength:
    """How visible one fake video's blend is; low ``subtlety`` means clear artefacts."""

    subtlety: float  # 0..1
    resolution: float  # donor rendered at this fraction of the crop size, then upsampled (1: not)
    colour_correction: float  # share of the donor-target colour difference removed
    feather: float  # mask feather (Gaussian sigma) as a fraction of the crop size
    extent: float  # mask radius relative to the inner face
    noise_match: float  # share of the original's sensor noise put back on the donor


def _sample_strength(rng: np.random.Generator) -> SwapStrength:
    """Mostly clear artefacts (blur, seam, colour patch); a tail of subtle ones."""
    subtlety = float(rng.beta(1.2, 3.0))
    return SwapStrength(
        subtlety=subtlety,
        resolution=0.25 + 0.6 * subtlety,
        colour_correction=0.8 * subtlety,
        feather=0.015 + 0.045 * subtlety,
        extent=float(rng.uniform(0.88, 1.08)),
        noise_match=0.2 + 0.8 * subtlety,
    )


def _swap_mask(person: Identity, canvas: int, strength: SwapStrength) -> np.ndarray:
    """Gaussian-feathered ellipse over the inner face (brows to chin top), float32 0..1.

    The ellipse is shrunk by one feather width before blurring, so that the feather fades out
    on the face's own skin as swap masks do, rather than spilling over hair and background.
    """
    coords = (np.arange(canvas, dtype=np.float32) + 0.5) / canvas
    x, y = np.meshgrid(coords - person.face_cx, coords - (person.face_cy + 0.12 * person.face_b))
    sigma = strength.feather / CANVAS_FIELD  # in canvas units
    rx = 0.78 * strength.extent * person.face_a - sigma
    ry = 0.78 * strength.extent * person.face_b - sigma
    hard = ((x / rx) ** 2 + (y / ry) ** 2 <= 1).astype(np.float32)
    return _gaussian_blur(hard, sigma * canvas)


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array (PIL's blur is a box approximation)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (offsets / max(sigma, 1e-6)) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, radius, mode="edge")
    rows = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), 0, rows).astype(np.float32)


def _swap_track(track: Track, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """The track's crops with another person's inner face blended in (uint8 (T, S, S, 3))."""
    size = spec.image_size
    canvas_size = track.canvas.shape[0]
    donor = aligned_donor(sample_identity(rng), track.person)
    strength = _sample_strength(rng)
    donor_canvas = render_identity(donor, canvas_size)
    mask_canvas = _swap_mask(track.person, canvas_size, strength)

    # Partial colour transfer: swap tools match the donor's colour to the target only in part.
    inside = mask_canvas > 0.5
    shift = track.canvas[inside].mean(axis=0) - donor_canvas[inside].mean(axis=0)
    donor_canvas = donor_canvas + strength.colour_correction * shift

    # Donor and mask are warped together, the mask as a fourth band: mode "RGBa" makes PIL
    # interpolate all four bands alike (it would premultiply a real RGBA), one warp per frame.
    # Rendered small and upsampled: the resampling blur that blended swaps carry.
    donor_and_mask = np.dstack([to_uint8(donor_canvas), to_uint8(mask_canvas * 255.0)])
    image = Image.frombuffer("RGBa", (canvas_size, canvas_size), donor_and_mask.tobytes(), "raw", "RGBa", 0, 1)
    reduced = max(8, round(size * strength.resolution))
    noise_sigma = strength.noise_match * track.noise_sigma
    fake = np.empty_like(track.pixels)
    for part in frame_blocks(len(track.frames)):
        warped = warp_all(image, track.warps[part], size, reduced)
        donor = warped[..., :3].astype(np.float32)
        donor *= track.gains[part, None, None, :]
        donor += noise(rng, donor.shape, noise_sigma)
        # original + mask * (donor - original), in place
        original = track.pixels[part].astype(np.float32)
        donor -= original
        donor *= warped[..., 3:].astype(np.float32) / 255.0
        donor += original
        fake[part] = to_uint8(donor)
    return fake


def warped_mask(mask_canvas: np.ndarray, warps: tuple[Affine, ...], size: int) -> np.ndarray:
    """A canvas mask (float 0..1) seen through each frame's warp -> float32 (T, size, size, 1)."""
    image = Image.fromarray(to_uint8(mask_canvas * 255.0), "L")
    return warp_all(image, warps, size)[..., None].astype(np.float32) / 255.0


def _blend(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 ``original + mask * (generated - original)``, in place on ``generated`` (float32)."""
    base = original.astype(np.float32)
    generated -= base
    generated *= mask
    generated += base
    return to_uint8(generated)


def _reenact_track(track: Track, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """The same person with other expressions, re-rendered over the eyes and mouth only."""
    person = track.person
    size = spec.image_size
    canvas_size = track.canvas.shape[0]
    expressions = [
        replace(
            person,
            eye_open=float(np.clip(person.eye_open * rng.uniform(0.55, 1.3), 0.25, 0.7)),
            brow_lift=float(person.brow_lift + rng.uniform(-0.6, 0.9)),
            brow_tilt=float(person.brow_tilt + rng.uniform(-6, 6)),
            smile=float(rng.uniform(-0.4, 0.8)),
            lip_height=float(person.lip_height * rng.uniform(1.0, 1.7)),
            mouth_width=float(person.mouth_width * rng.uniform(0.85, 1.1)),
        )
        for _ in range(2)
    ]
    canvases = [render_identity(expression, canvas_size) for expression in expressions]
    feather = float(rng.uniform(0.012, 0.03))
    mask_band = to_uint8(feature_mask(person, canvas_size, feather) * 255.0)
    # Talking: the expression moves between the two at 1-2.5 Hz, in _EXPRESSION_STEPS poses (each
    # drawn once with the mask as a fourth band, so that a frame costs one warp).
    poses = []
    for weight in np.linspace(0.0, 1.0, _EXPRESSION_STEPS):
        pose = np.dstack([to_uint8((1 - weight) * canvases[0] + weight * canvases[1]), mask_band])
        poses.append(Image.frombuffer("RGBa", (canvas_size, canvas_size), pose.tobytes(), "raw", "RGBa", 0, 1))
    reduced = max(8, round(size * rng.uniform(0.45, 0.8)))  # the generator's output resolution
    noise_sigma = float(rng.uniform(0.1, 0.6)) * track.noise_sigma

    t = track.frames.astype(np.float64) / spec.n_frame_slots
    talking = 0.5 + 0.5 * np.sin(2 * math.pi * rng.uniform(10, 25) * t + rng.uniform(0, 2 * math.pi))
    pose_of_frame = np.rint(talking * (_EXPRESSION_STEPS - 1)).astype(int)
    # The re-rendered region is placed with a small per-frame jitter (the reenactment's warp).
    jitter = rng.uniform(0.3, 1.0) * canvas_size / size  # canvas pixels
    offsets = rng.normal(0, jitter, (len(t), 2)) + jitter * np.sin(
        2 * math.pi * rng.uniform(1, 4, 2)[None, :] * t[:, None] + rng.uniform(0, 2 * math.pi, 2)[None, :]
    )
    warps = tuple((a, b, c + dx, d, e, f + dy) for (a, b, c, d, e, f), (dx, dy) in zip(track.warps, offsets))
    fake = np.empty_like(track.pixels)
    for part in frame_blocks(len(track.frames)):
        frames = np.arange(part.start, part.stop)
        warped = np.empty((len(frames), size, size, 4), dtype=np.uint8)
        for pose in np.unique(pose_of_frame[part]):
            chosen = frames[pose_of_frame[part] == pose]
            warped[chosen - part.start] = warp_all(poses[pose], tuple(warps[i] for i in chosen), size, reduced)
        region = warped[..., :3].astype(np.float32)
        region *= track.gains[part, None, None, :]
        region += noise(rng, region.shape, noise_sigma)
        fake[part] = _blend(track.pixels[part], region, warped[..., 3:].astype(np.float32) / 255.0)
    return fake


def feature_mask(person: Identity, canvas: int, feather: float) -> np.ndarray:
    """Feathered ellipses over both eyes with their brows and over the mouth, float32 0..1."""
    coords = (np.arange(canvas, dtype=np.float32) + 0.5) / canvas
    x, y = np.meshgrid(coords, coords)
    cx, cy, a, b = person.face_cx, person.face_cy, person.face_a, person.face_b
    half_w = person.eye_width * a
    half_h = half_w * person.eye_open
    eye_y = cy - person.eye_up * b
    brow_y = eye_y - person.brow_lift * half_h
    regions = [
        (
            cx + side * person.eye_apart * a,
            (eye_y + brow_y) / 2 - 0.3 * half_h,
            1.9 * half_w,
            (eye_y - brow_y) / 2 + 2.6 * half_h,
        )
        for side in (-1, 1)
    ]
    mouth_y = cy + person.mouth_down * b
    regions.append(
        (cx, mouth_y + 0.3 * person.lip_height * b, 1.45 * person.mouth_width * a, 3.2 * person.lip_height * b)
    )
    hard = np.zeros((canvas, canvas), dtype=np.float32)
    for ex, ey, rx, ry in regions:
        hard = np.maximum(hard, (((x - ex) / rx) ** 2 + ((y - ey) / ry) ** 2 <= 1).astype(np.float32))
    return _gaussian_blur(hard, feather / CANVAS_FIELD * canvas)


def _gan_upsample_track(track: Track, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """The inner face regenerated from a low-resolution copy through checkerboard-prone x2 upsamplings."""
    size = spec.image_size
    strength = _sample_strength(rng)
    mask = warped_mask(_swap_mask(track.person, track.canvas.shape[0], strength), track.warps, size)
    steps = int(rng.integers(1, 3))  # one or two transposed-convolution-like stride-2 layers
    low = max(4, math.ceil(size / 2**steps))
    # Per layer and axis: even output phases get gain 1 + eps, odd ones 1 - eps (unequal kernel overlap).
    eps = rng.uniform(0.015, 0.05, size=(steps, 2))
    tint = 1 + rng.normal(0, 0.02, 3).astype(np.float32)  # the generator's slight colour drift
    noise_sigma = float(rng.uniform(0.0, 0.3)) * track.noise_sigma
    fake = np.empty_like(track.pixels)
    for part in frame_blocks(len(track.frames)):
        small = np.stack(
            [
                np.asarray(Image.fromarray(frame).resize((low, low), Image.Resampling.BOX))
                for frame in track.pixels[part]
            ]
        ).astype(np.float32)
        for step in range(steps):
            small = _transposed_upsample(small, axis=1, eps=float(eps[step, 0]))
            small = _transposed_upsample(small, axis=2, eps=float(eps[step, 1]))
        generated = np.ascontiguousarray(small[:, :size, :size]) * tint
        generated += noise(rng, generated.shape, noise_sigma)
        fake[part] = _blend(track.pixels[part], generated, mask[part])
    return fake


def _transposed_upsample(x: np.ndarray, axis: int, eps: float) -> np.ndarray:
    """x2 along ``axis`` like a stride-2, 3-tap transposed convolution with taps (a, b, a).

    Output 2i is ``b * x[i]``, output 2i+1 is ``a * (x[i] + x[i+1])`` (edge repeated); with
    ``b = 1 + eps`` and ``2a = 1 - eps`` the two phases differ in gain: the checkerboard.
    """
    following = np.concatenate(
        [np.take(x, range(1, x.shape[axis]), axis=axis), np.take(x, [x.shape[axis] - 1], axis=axis)], axis=axis
    )
    even = (1 + eps) * x
    odd = (1 - eps) * 0.5 * (x + following)
    stacked = np.stack([even, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] *= 2
    return stacked.reshape(shape)


def _colour_track(track: Track, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """The inner face colour-transferred towards another skin tone; structure and noise untouched."""
    size = spec.image_size
    strength = _sample_strength(rng)
    mask = warped_mask(_swap_mask(track.person, track.canvas.shape[0], strength), track.warps, size)
    donor = sample_identity(rng)
    shift = np.array(donor.skin, dtype=np.float32) - np.array(track.person.skin, dtype=np.float32)
    shift *= rng.uniform(0.4, 0.9)
    # A like-for-like skin tone is pushed to a visible difference, a far one held to a plausible one.
    magnitude = float(np.linalg.norm(shift))
    direction = shift / magnitude if magnitude > 1e-6 else np.array([0.6, -0.2, -0.77], dtype=np.float32)
    shift = direction * float(np.clip(magnitude, *_COLOUR_SHIFT))
    gain = (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    fake = np.empty_like(track.pixels)
    for part in frame_blocks(len(track.frames)):
        generated = track.pixels[part].astype(np.float32) * gain
        generated += shift * track.gains[part, None, None, :]
        fake[part] = _blend(track.pixels[part], generated, mask[part])
    return fake


MANIPULATORS: dict[str, Callable[[Track, DemoSpec, np.random.Generator], np.ndarray]] = {
    "swap": _swap_track,
    "reenact": _reenact_track,
    "gan_upsample": _gan_upsample_track,
    "colour": _colour_track,
}
