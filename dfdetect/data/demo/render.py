"""Procedural identities drawn once per person and warped per frame: the real videos' face tracks."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

from dfdetect.data.demo.spec import DemoSpec

RGB = tuple[float, float, float]


Affine = tuple[float, float, float, float, float, float]


# Maps an ellipse (centre x, y and radii, in canvas units) to a PIL bounding box in pixels.
BoxFn = Callable[[float, float, float, float], list[float]]


# The identity canvas spans this many crop widths, leaving room for motion inside the canvas.
CANVAS_FIELD = 1.3


_SUPERSAMPLE = 3  # identities are drawn at 3x and downsampled, for smooth edges


_FRAMES_PER_BLOCK = 32


_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32)


_SKIN_PALETTE = np.array(
    [(247, 218, 196), (232, 190, 160), (205, 150, 115), (170, 115, 80), (125, 80, 55), (88, 58, 40)],
    dtype=np.float64,
)


_HAIR_COLOURS = ((30, 25, 22), (65, 45, 30), (110, 75, 45), (200, 170, 110), (150, 70, 35), (165, 162, 158))


_IRIS_COLOURS = ((90, 60, 35), (45, 35, 30), (80, 110, 150), (80, 110, 70), (120, 95, 55))


@dataclass(frozen=True)
class Identity:
    """A procedural person; lengths are fractions of the canvas (1.3 crop widths)."""

    skin: RGB
    face_cx: float
    face_cy: float
    face_a: float  # half-width of the face ellipse
    face_b: float  # half-height
    hair: RGB
    hair_style: str  # "short" | "long" | "bald"
    hairline: float  # hair covers the face above cy - hairline * b
    eye_up: float  # eye line above the face centre, in units of b
    eye_apart: float  # half distance between the eyes, in units of a
    eye_width: float  # eye half-width, in units of a
    eye_open: float  # eye height / width
    iris: RGB
    brow_lift: float  # brow height above the eye, in eye half-heights
    brow_thickness: float  # in eye half-heights
    brow_tilt: float  # degrees, outer end up
    nose_down: float  # nose tip below the face centre, in units of b
    nose_width: float  # in units of a
    mouth_down: float  # in units of b
    mouth_width: float  # half-width, in units of a
    lip: RGB
    lip_height: float  # in units of b
    smile: float  # mouth-line curvature, in lip heights
    beard: float  # 0: none, else opacity
    glasses: bool
    background_top: RGB
    background_bottom: RGB
    clothing: RGB
    light_angle: float  # radians; direction the light comes from
    light_gradient: float
    face_shading: float
    texture: float  # skin texture amplitude (grey levels)
    texture_seed: int


def sample_identity(rng: np.random.Generator) -> Identity:
    skin_position = rng.uniform(0, len(_SKIN_PALETTE) - 1)
    low = int(skin_position)
    high = min(low + 1, len(_SKIN_PALETTE) - 1)
    skin = _SKIN_PALETTE[low] + (skin_position - low) * (_SKIN_PALETTE[high] - _SKIN_PALETTE[low])
    skin = np.clip(skin + rng.normal(0, 6, 3), 0, 255)
    a = rng.uniform(0.22, 0.27)
    lip = 0.7 * skin + 0.3 * np.array([165.0, 55.0, 60.0])
    hair = np.array(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], dtype=np.float64) + rng.normal(0, 6, 3)
    background = rng.uniform(25, 225, size=(2, 3))
    background = 0.5 * background + 0.5 * background.mean(axis=1, keepdims=True)  # muted rooms
    return Identity(
        skin=_rgb(skin),
        face_cx=0.5 + rng.uniform(-0.015, 0.015),
        face_cy=0.5 + rng.uniform(-0.01, 0.03),
        face_a=a,
        face_b=a * rng.uniform(1.22, 1.4),
        hair=_rgb(hair),
        hair_style=str(rng.choice(["short", "long", "bald"], p=[0.5, 0.35, 0.15])),
        hairline=rng.uniform(0.55, 0.85),
        eye_up=rng.uniform(0.08, 0.2),
        eye_apart=rng.uniform(0.36, 0.46),
        eye_width=rng.uniform(0.16, 0.22),
        eye_open=rng.uniform(0.4, 0.6),
        iris=_rgb(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]),
        brow_lift=rng.uniform(1.8, 2.8),
        brow_thickness=rng.uniform(0.35, 0.8),
        brow_tilt=rng.uniform(-8, 12),
        nose_down=rng.uniform(0.18, 0.3),
        nose_width=rng.uniform(0.13, 0.2),
        mouth_down=rng.uniform(0.45, 0.58),
        mouth_width=rng.uniform(0.28, 0.42),
        lip=_rgb(lip * 0.92),
        lip_height=rng.uniform(0.05, 0.09),
        smile=rng.uniform(-0.3, 0.6),
        beard=rng.uniform(0.4, 0.8) if rng.random() < 0.2 else 0.0,
        glasses=bool(rng.random() < 0.15),
        background_top=_rgb(background[0]),
        background_bottom=_rgb(background[1]),
        clothing=_rgb(rng.uniform(20, 230, 3)),
        light_angle=rng.uniform(0, 2 * math.pi),
        light_gradient=rng.uniform(0.03, 0.1),
        face_shading=rng.uniform(0.1, 0.25),
        texture=rng.uniform(2.0, 5.0),
        texture_seed=int(rng.integers(2**31)),
    )


def aligned_donor(donor: Identity, target: Identity) -> Identity:
    """The donor's face placed where the target's is: swaps align donor landmarks to the target."""
    return replace(donor, face_cx=target.face_cx, face_cy=target.face_cy, face_a=target.face_a, face_b=target.face_b)


def _canvas_size(image_size: int) -> int:
    return round(CANVAS_FIELD * image_size)


def render_identity(person: Identity, canvas: int) -> np.ndarray:
    """The person's face on a ``canvas`` x ``canvas`` float32 RGB canvas (drawn once, warped per frame)."""
    size = canvas * _SUPERSAMPLE
    image = Image.fromarray(_vertical_gradient(size, person.background_top, person.background_bottom))
    draw = ImageDraw.Draw(image)
    cx, cy, a, b = person.face_cx, person.face_cy, person.face_a, person.face_b

    def box(x: float, y: float, rx: float, ry: float) -> list[float]:
        return [(x - rx) * size, (y - ry) * size, (x + rx) * size, (y + ry) * size]

    # Shoulders and neck, then hair behind the head, ears, the face.
    draw.ellipse(box(cx, cy + 2.0 * b, 2.3 * a, 0.95 * b), fill=_ink(person.clothing))
    draw.rectangle(box(cx, cy + 0.95 * b, 0.42 * a, 0.65 * b), fill=_ink(person.skin, 0.8))
    if person.hair_style == "long":
        draw.ellipse(box(cx, cy, 1.28 * a, 1.2 * b), fill=_ink(person.hair))
        draw.rectangle(box(cx, cy + 0.6 * b, 1.22 * a, 0.7 * b), fill=_ink(person.hair))
    elif person.hair_style == "short":
        draw.ellipse(box(cx, cy - 0.12 * b, 1.08 * a, 0.98 * b), fill=_ink(person.hair))
    for side in (-1, 1):
        draw.ellipse(box(cx + side * 0.98 * a, cy - 0.05 * b, 0.14 * a, 0.2 * b), fill=_ink(person.skin, 0.92))
    draw.ellipse(box(cx, cy, a, b), fill=_ink(person.skin))
    if person.hair_style != "bald":
        fringe = Image.new("L", (size, size), 0)
        ImageDraw.Draw(fringe).ellipse(box(cx, cy - 0.04 * b, 1.04 * a, 1.03 * b), fill=255)
        fringe.paste(0, (0, int((cy - person.hairline * b) * size), size, size))
        image.paste(_ink(person.hair), mask=fringe)
    if person.beard > 0:
        beard = Image.new("L", (size, size), 0)
        ImageDraw.Draw(beard).chord(box(cx, cy, a, b), 10, 170, fill=int(255 * person.beard))
        beard.paste(0, (0, 0, size, int((cy + person.nose_down * b) * size)))
        image.paste(_ink(person.hair, 0.85), mask=beard)

    _draw_eyes_and_brows(draw, person, box, size)
    _draw_nose_and_mouth(draw, person, box, size)

    canvas_image = image.resize((canvas, canvas), Image.Resampling.LANCZOS)
    pixels = np.asarray(canvas_image, dtype=np.float32)
    pixels = pixels * _light_field(person, canvas)[..., None] + _skin_texture(person, canvas)[..., None]
    return np.clip(pixels, 0, 255)


def _draw_eyes_and_brows(draw: ImageDraw.ImageDraw, person: Identity, box: BoxFn, size: int) -> None:
    cx, cy, a, b = person.face_cx, person.face_cy, person.face_a, person.face_b
    eye_y = cy - person.eye_up * b
    half_w = person.eye_width * a
    half_h = half_w * person.eye_open
    brow_colour = _ink(person.hair, 0.7) if person.hair_style != "bald" else _ink(person.skin, 0.45)
    for side in (-1, 1):
        eye_x = cx + side * person.eye_apart * a
        draw.ellipse(box(eye_x, eye_y, 1.45 * half_w, 1.6 * half_h), fill=_ink(person.skin, 0.88))  # socket shadow
        draw.ellipse(box(eye_x, eye_y, half_w, half_h), fill=(236, 232, 224))
        draw.ellipse(box(eye_x, eye_y, 0.95 * half_h, 0.95 * half_h), fill=_ink(person.iris))
        draw.ellipse(box(eye_x, eye_y, 0.42 * half_h, 0.42 * half_h), fill=(18, 14, 12))
        draw.arc(
            box(eye_x, eye_y, half_w, half_h), 180, 360, fill=(40, 30, 28), width=max(1, round(half_h * 0.3 * size))
        )
        # Brow: a thick slanted bar above the eye, the outer end lifted by the tilt.
        brow_y = eye_y - person.brow_lift * half_h
        lift = math.tan(math.radians(person.brow_tilt)) * half_w
        inner = (eye_x - side * 1.1 * half_w, brow_y)
        outer = (eye_x + side * 1.2 * half_w, brow_y - lift)
        draw.line(
            [(inner[0] * size, inner[1] * size), (outer[0] * size, outer[1] * size)],
            fill=brow_colour,
            width=max(1, round(person.brow_thickness * half_h * size)),
        )
    if person.glasses:
        frame_width = max(1, round(0.012 * size))
        for side in (-1, 1):
            eye_x = cx + side * person.eye_apart * a
            draw.ellipse(box(eye_x, eye_y, 1.7 * half_w, 2.2 * half_h), outline=(25, 25, 30), width=frame_width)
        bridge = [((cx - 0.12 * a) * size, eye_y * size), ((cx + 0.12 * a) * size, eye_y * size)]
        draw.line(bridge, fill=(25, 25, 30), width=frame_width)


def _draw_nose_and_mouth(draw: ImageDraw.ImageDraw, person: Identity, box: BoxFn, size: int) -> None:
    cx, cy, a, b = person.face_cx, person.face_cy, person.face_a, person.face_b
    nose_y = cy + person.nose_down * b
    nose_w = person.nose_width * a
    top = cy - person.eye_up * b + 0.1 * b
    draw.line(
        [(cx + 0.3 * nose_w) * size, top * size, (cx + 0.5 * nose_w) * size, nose_y * size],
        fill=_ink(person.skin, 0.82),
        width=max(1, round(0.15 * nose_w * size)),
    )
    draw.ellipse(box(cx, nose_y - 0.02 * b, 0.55 * nose_w, 0.07 * b), fill=_ink(person.skin, 1.06))
    for side in (-1, 1):
        nostril = box(cx + side * 0.5 * nose_w, nose_y + 0.02 * b, 0.22 * nose_w, 0.035 * b)
        draw.ellipse(nostril, fill=_ink(person.skin, 0.55))
    mouth_y = cy + person.mouth_down * b
    mouth_w = person.mouth_width * a
    lip_h = person.lip_height * b
    draw.ellipse(box(cx, mouth_y - 0.45 * lip_h, mouth_w, 0.6 * lip_h), fill=_ink(person.lip, 0.9))
    draw.ellipse(box(cx, mouth_y + 0.5 * lip_h, 0.85 * mouth_w, 0.75 * lip_h), fill=_ink(person.lip))
    # The line between the lips bends up at the corners for a smile, down for a frown.
    curve = person.smile * lip_h
    line = [((cx + t * mouth_w) * size, (mouth_y - curve * t * t + 0.5 * curve) * size) for t in np.linspace(-1, 1, 9)]
    draw.line(line, fill=_ink(person.lip, 0.45), width=max(1, round(0.25 * lip_h * size)))


def _vertical_gradient(size: int, top: RGB, bottom: RGB) -> np.ndarray:
    weight = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    rows = (1 - weight) * np.array(top, dtype=np.float32) + weight * np.array(bottom, dtype=np.float32)
    return np.broadcast_to(rows, (size, size, 3)).astype(np.uint8)


def _light_field(person: Identity, canvas: int) -> np.ndarray:
    """Directional light over the canvas and darkening towards the face's edge (a rounded face)."""
    coords = (np.arange(canvas, dtype=np.float32) + 0.5) / canvas
    x, y = np.meshgrid(coords - person.face_cx, coords - person.face_cy)
    towards_light = (x * math.cos(person.light_angle) + y * math.sin(person.light_angle)) / person.face_a
    radius2 = (x / person.face_a) ** 2 + (y / person.face_b) ** 2
    edge = np.where(radius2 < 1.1, np.clip(radius2, 0, 1.1) ** 1.5, 0.0)
    return (1.0 + person.light_gradient * towards_light - person.face_shading * edge).astype(np.float32)


def _skin_texture(person: Identity, canvas: int) -> np.ndarray:
    """Fixed texture that moves with the face: blotches plus grain (per-frame noise is separate)."""
    rng = np.random.default_rng(person.texture_seed)
    coarse = rng.standard_normal((canvas // 5 + 2, canvas // 5 + 2)).astype(np.float32)
    blotches = np.asarray(Image.fromarray(coarse, "F").resize((canvas, canvas), Image.Resampling.BICUBIC))
    grain = rng.standard_normal((canvas, canvas)).astype(np.float32)
    return person.texture * (0.8 * blotches + 0.5 * grain)


def _ink(colour: RGB, factor: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(channel * factor)))) for channel in colour)  # type: ignore[return-value]


def _rgb(values) -> RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


@dataclass(frozen=True)
class Track:
    """One face through a video: who, in which frames, and how it looks in each."""

    face_index: int  # 1 for `{n}.png`, 2 for `{n}_2.png`
    person: Identity
    canvas: np.ndarray  # float32 (C, C, 3): the person drawn once
    frames: np.ndarray  # sorted frame indices holding this face
    warps: tuple[Affine, ...]  # per frame: output pixel -> canvas pixel
    gains: np.ndarray  # float32 (T, 3): per-frame lighting
    noise_sigma: float
    pixels: np.ndarray  # uint8 (T, S, S, 3): the crops as written
    swappable: bool  # the actor a fake replaces (not a bystander)


def frame_sets(scene: str, n_slots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames with a first face, and frames with a second face (a subset of the first)."""
    if scene == "sparse":  # long stretches without a detectable face
        keep = rng.uniform(0.3, 0.62)
        primary = _with_gaps(n_slots, round(n_slots * (1 - keep)), int(rng.integers(1, 4)), rng)
    else:  # a few detector misses; two-actor videos are steadier so that they reach ~600 files
        max_missing = 0.05 if scene == "two_actors" else 0.15
        missing = round(n_slots * max_missing * rng.beta(1.2, 2.5))
        primary = _with_gaps(n_slots, missing, int(rng.integers(1, 5)), rng)
    frames = np.flatnonzero(primary)
    if scene == "two_actors":
        missing = round(len(frames) * 0.08 * rng.random())
        second = frames[_with_gaps(len(frames), missing, int(rng.integers(1, 4)), rng)]
    elif scene == "extra_faces":  # a bystander caught in a handful of frames
        count = min(len(frames), int(rng.integers(2, 11)))
        second = np.sort(rng.choice(frames, size=count, replace=False))
    else:
        second = np.array([], dtype=np.int64)
    return frames, second


def _with_gaps(n: int, n_missing: int, n_runs: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of length n with exactly ``n_missing`` False slots in ``n_runs`` runs."""
    n_missing = min(max(n_missing, 0), n - 1)  # keep at least one face
    present = np.ones(n, dtype=bool)
    if n_missing == 0:
        return present
    n_runs = max(1, min(n_runs, n_missing))
    run_lengths = _composition(n_missing, n_runs, rng, positive=True)
    kept_lengths = _composition(n - n_missing, n_runs + 1, rng, positive=False)
    position = 0
    for kept, run in zip(kept_lengths, run_lengths):
        position += kept
        present[position : position + run] = False
        position += run
    return present


def _composition(total: int, parts: int, rng: np.random.Generator, positive: bool) -> list[int]:
    """Split ``total`` into ``parts`` random integers (each >= 1 when positive, else >= 0)."""
    if positive:
        if parts > 1:
            cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False))
        else:
            cuts = np.array([], int)
    else:
        cuts = np.sort(rng.integers(0, total + 1, size=parts - 1))
    edges = np.concatenate([[0], cuts, [total]])
    return [int(length) for length in np.diff(edges)]


def _motion_warps(frames: np.ndarray, spec: DemoSpec, rng: np.random.Generator) -> tuple[Affine, ...]:
    """Per-frame affine maps for a detector-centred crop: a few pixels of drift, a few % zoom, roll.

    Smooth paths (two sinusoids each) plus a little per-frame jitter of the detector's box.
    """
    size = spec.image_size
    canvas = _canvas_size(size)
    t = frames.astype(np.float64) / spec.n_frame_slots

    def path(amplitude: float) -> np.ndarray:
        f1, f2 = rng.uniform(0.3, 2.0), rng.uniform(2.0, 6.0)
        p1, p2 = rng.uniform(0, 2 * math.pi, 2)
        return amplitude * (0.7 * np.sin(2 * math.pi * f1 * t + p1) + 0.3 * np.sin(2 * math.pi * f2 * t + p2))

    shift_x = path(rng.uniform(0.01, 0.04) * size) + rng.normal(0, 0.15, len(t))
    shift_y = path(rng.uniform(0.01, 0.04) * size) + rng.normal(0, 0.15, len(t))
    zoom = rng.uniform(0.97, 1.03) + path(rng.uniform(0.01, 0.03))
    roll = np.radians(path(rng.uniform(0.5, 3.0)))
    pixels_per_output = canvas / (CANVAS_FIELD * size)
    centre_out, centre_canvas = size / 2, canvas / 2
    warps = []
    for dx, dy, z, angle in zip(shift_x, shift_y, zoom, roll):
        k = pixels_per_output / z
        a, b = k * math.cos(angle), k * math.sin(angle)
        d, e = -b, a
        c = centre_canvas - a * centre_out - b * centre_out - dx * pixels_per_output
        f = centre_canvas - d * centre_out - e * centre_out - dy * pixels_per_output
        warps.append((a, b, c, d, e, f))
    return tuple(warps)


def _lighting(frames: np.ndarray, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """Per-frame RGB gains: a colour cast for the video, slow drift and a slight flicker."""
    t = frames.astype(np.float64) / spec.n_frame_slots
    cast = rng.uniform(0.9, 1.08) * (1 + rng.normal(0, 0.025, 3))
    drift = rng.uniform(0.01, 0.04) * np.sin(2 * math.pi * rng.uniform(0.2, 1.5) * t + rng.uniform(0, 2 * math.pi))
    flicker = rng.normal(0, 0.006, len(t))
    return (cast[None, :] * (1 + drift + flicker)[:, None]).astype(np.float32)


def warp_all(canvas: Image.Image, warps: tuple[Affine, ...], size: int, reduced: int | None = None) -> np.ndarray:
    """Warp one canvas image through each frame's affine map -> (T, size, size[, bands]) uint8.

    With ``reduced``, each frame is rendered at ``reduced`` pixels and upsampled to ``size``
    (the resampling blur of a swapped face). Frames are pasted into one tall strip so that the
    whole video crosses into numpy in one copy.
    """
    strip = Image.new(canvas.mode, (size, size * len(warps)))
    for i, warp in enumerate(warps):
        if reduced is None or reduced >= size:
            frame = canvas.transform((size, size), Image.Transform.AFFINE, warp, Image.Resampling.BILINEAR)
        else:
            small = canvas.transform(
                (reduced, reduced), Image.Transform.AFFINE, _rescaled(warp, size, reduced), Image.Resampling.BILINEAR
            )
            frame = small.resize((size, size), Image.Resampling.BILINEAR)
        strip.paste(frame, (0, i * size))
    pixels = np.asarray(strip)
    return pixels.reshape((len(warps), size, size) + pixels.shape[2:])


def _render_track(
    face_index: int, person: Identity, frames: np.ndarray, spec: DemoSpec, rng: np.random.Generator, swappable: bool
) -> Track:
    canvas = render_identity(person, _canvas_size(spec.image_size))
    warps = _motion_warps(frames, spec, rng)
    gains = _lighting(frames, spec, rng)
    noise_sigma = float(rng.uniform(1.0, 2.5))
    canvas_image = Image.fromarray(to_uint8(canvas))
    size = spec.image_size
    pixels = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for part in frame_blocks(len(frames)):
        block = warp_all(canvas_image, warps[part], size).astype(np.float32)
        block *= gains[part, None, None, :]
        block += noise(rng, block.shape, noise_sigma)
        pixels[part] = to_uint8(block)
    return Track(face_index, person, canvas, frames, warps, gains, noise_sigma, pixels, swappable)


def frame_blocks(n_frames: int) -> Iterator[slice]:
    """Consecutive blocks of frames: float32 work on ~1.5 MB blocks stays in the CPU cache and
    runs twice as fast as on whole-video arrays."""
    for start in range(0, n_frames, _FRAMES_PER_BLOCK):
        yield slice(start, min(start + _FRAMES_PER_BLOCK, n_frames))


def noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian sensor noise, drawn as random bytes looked up in a table of normal quantiles.

    A 256-level normal is indistinguishable at these amplitudes and several times faster to
    draw than ``standard_normal``; a batch draws about a hundred million values.
    """
    levels = np.frombuffer(rng.bytes(math.prod(shape)), dtype=np.uint8).reshape(shape)
    return np.take(_NORMAL_QUANTILES * np.float32(sigma), levels)


def render_original(scene: str, spec: DemoSpec, rng: np.random.Generator) -> list[Track]:
    """The real video's face tracks: its actor, and a second actor or a bystander by scene."""
    first, second = frame_sets(scene, spec.n_frame_slots, rng)
    tracks = [_render_track(1, sample_identity(rng), first, spec, rng, swappable=True)]
    if len(second):
        # Two-actor videos swap both actors; a bystander's few crops stay as they were.
        swappable = scene == "two_actors"
        tracks.append(_render_track(2, sample_identity(rng), second, spec, rng, swappable=swappable))
    return tracks


def _rescaled(warp: Affine, size: int, reduced: int) -> Affine:
    """The same canvas region seen at ``reduced`` pixels instead of ``size``."""
    a, b, c, d, e, f = warp
    k = size / reduced
    return (a * k, b * k, c, d * k, e * k, f)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round to the nearest grey level."""
    rounded = np.add(pixels, 0.5, dtype=np.float32)
    np.clip(rounded, 0, 255, out=rounded)
    return rounded.astype(np.uint8)
