"""Deterministic demo face batches in exactly the DFDC face-batch format, learnable by a detector.

Each batch is a ``deepfake-detection-faces-part-{i}-{j}.zip`` with ``metadata.csv`` and one folder
of face crops per video, shaped like the real data:

- families: each real video present has 1 to 5 fakes; most fakes come from originals that are
  not in the data (rendered in memory to make the fakes, never written); about 87% FAKE;
- frame sets: most videos hold 250-300 faces out of 300 frame slots with a few gaps, some hold
  under 200 (long face-less stretches), a few two-actor videos hold about 600 (``{n}_2.png`` on
  most frames), some have a handful of ``{n}_2.png`` frames (a bystander);
- faces: procedural identities (skin tone, face shape, eyes, brows, nose, mouth, hair, beard,
  glasses, background, skin texture) rendered once per identity and warped per frame (small
  smooth shifts, zoom and roll), with lighting flicker and per-frame sensor noise;
- fakes: made from the original's own frames by one of ``MANIPULATIONS`` per fake video (the
  spec's ``manipulations``, assigned evenly over a batch's fakes in a seeded order), each leaving
  a different trace; the strength varies per fake video:

  - ``swap`` (the default, and the only kind before manipulations existed): a donor identity is
    rendered aligned to the target face, at reduced resolution and upsampled (resampling blur),
    only partly colour-corrected (skin tone mismatch), and blended in through a
    Gaussian-feathered elliptical mask over the inner face;
  - ``reenact``: the same person with another expression (eyes, brows, mouth), re-rendered at
    reduced resolution, moving between two expressions as if talking, warped with a small
    per-frame jitter and blended in only over the eye and mouth regions: identity unchanged;
  - ``gan_upsample``: the inner face regenerated from a low-resolution copy of itself through
    one or two transposed-convolution-like x2 upsamplings whose even and odd output phases have
    unequal gains (checkerboard artefacts), without the sensor noise, blended over the inner face;
  - ``colour``: the inner face colour-transferred towards another skin tone (per-channel gain
    and shift), pixels otherwise untouched, blended through the feathered inner-face mask.

  ``metadata.csv`` gets a fifth column, ``manipulation``: the kind for FAKE rows, empty for REAL.
- REAL share: each batch's share of REAL videos is drawn from ``real_share`` (10-15% by
  default, as in DFDC; up to 50%, since every REAL video present has at least one fake).

Everything is a function of ``(batch_index, DemoSpec)``: rerunning gives byte-identical zips.
No TensorFlow or Keras here (data-prep modules start fast).
"""

from __future__ import annotations

import hashlib
import math
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Callable, ClassVar, Iterator

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.config import SectionSettings
from dfdetect.data.facebatch import (
    MANIPULATION_COLUMN,
    METADATA_COLUMNS,
    METADATA_MEMBER,
    face_member_name,
    metadata_csv,
    write_member,
)
from dfdetect.data.png import encode_pngs
from dfdetect.layout import BATCH_FILE_PATTERN, batch_id, demo_batch_id

__all__ = [
    "DemoSpec",
    "DemoBatchSummary",
    "FamilyPlan",
    "BatchPlan",
    "LAYOUTS",
    "MANIPULATIONS",
    "plan_batch",
    "planned_videos",
    "write_demo_batch",
]

RGB = tuple[float, float, float]
Affine = tuple[float, float, float, float, float, float]
# Maps an ellipse (centre x, y and radii, in canvas units) to a PIL bounding box in pixels.
BoxFn = Callable[[float, float, float, float], list[float]]

# Frame-set layouts and their target shares of the videos in a batch (the rest are "steady").
LAYOUTS = ("steady", "sparse", "two_actors", "extra_faces")
_RARE_LAYOUT_SHARES = {"two_actors": 0.05, "sparse": 0.08, "extra_faces": 0.15}

MANIPULATIONS = ("swap", "reenact", "gan_upsample", "colour")
_MAX_FAKES_PER_ORIGINAL = 5
_EXPRESSION_STEPS = 5  # poses of a `reenact` fake between its two expressions
_COLOUR_SHIFT = (18.0, 40.0)  # length of a `colour` fake's RGB shift of the inner face, in grey levels

# The identity canvas spans this many crop widths, leaving room for motion inside the canvas.
_CANVAS_FIELD = 1.3
_SUPERSAMPLE = 3  # identities are drawn at 3x and downsampled, for smooth edges
_FRAMES_PER_BLOCK = 32

_NAME_LETTERS = 10
_NAME_SPACE = 26**_NAME_LETTERS
_NAME_BITS = 48  # 2**48 > 26**10: names come from a 48-bit permutation, cycle-walked into range
_SLOTS_PER_BATCH = 2**16

_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32)

_SKIN_PALETTE = np.array(
    [(247, 218, 196), (232, 190, 160), (205, 150, 115), (170, 115, 80), (125, 80, 55), (88, 58, 40)],
    dtype=np.float64,
)
_HAIR_COLOURS = ((30, 25, 22), (65, 45, 30), (110, 75, 45), (200, 170, 110), (150, 70, 35), (165, 162, 158))
_IRIS_COLOURS = ((90, 60, 35), (45, 35, 30), (80, 110, 150), (80, 110, 70), (120, 95, 55))


@dataclass(frozen=True)
class DemoSpec(SectionSettings):
    """Size and seed of the demo data (config section ``demo``, its keys but ``enabled`` and
    ``batches``); the zips are a function of this and the batch index. Build it with
    ``from_mapping``/``of``, which take the schema's defaults and ranges."""

    SECTION: ClassVar[str] = "demo"

    videos_per_batch: int
    image_size: int
    n_frame_slots: int  # frame indices 0..n-1 (DFDC: 10 s at 30 fps)
    seed: int
    manipulations: tuple[str, ...]  # kinds of fakes, spread evenly over a batch's fakes
    real_share: tuple[float, float]  # a batch's REAL share is drawn from [low, high]

    def __post_init__(self) -> None:
        # Config files give lists: store tuples (hashable, comparable).
        object.__setattr__(self, "manipulations", tuple(self.manipulations))
        object.__setattr__(self, "real_share", tuple(float(value) for value in self.real_share))
        low, high = self.real_share
        if low > high:  # the one relation the schema cannot express
            raise ValueError(f"demo.real_share must be [low, high] with low <= high, got {list(self.real_share)}")


@dataclass(frozen=True)
class DemoBatchSummary:
    """What one ``write_demo_batch`` call wrote (the caller logs it)."""

    batch: str
    path: Path
    n_real: int
    n_fake: int
    n_absent_originals: int  # originals referenced by fakes but not written
    n_files: int  # face images written
    n_bytes: int
    seconds: float

    @property
    def n_videos(self) -> int:
        return self.n_real + self.n_fake

    def __str__(self) -> str:
        return (
            f"demo batch {self.batch}: {self.n_videos} videos ({self.n_real} REAL, {self.n_fake} FAKE, "
            f"{self.n_absent_originals} originals absent), {self.n_files} face images, "
            f"{self.n_bytes / 1e6:.1f} MB in {self.seconds:.1f} s -> {self.path}"
        )


@dataclass(frozen=True)
class FamilyPlan:
    """One real video and the fakes made from it; the real video may be absent from the batch."""

    number: int  # position in the batch plan; seeds the family's rendering
    original: str  # video stem of the real video
    original_present: bool
    fakes: tuple[str, ...]
    layout: str  # one of LAYOUTS, shared by the original and its fakes
    manipulations: tuple[str, ...] = ()  # per fake: the kind that made it (MANIPULATIONS)

    def manipulation(self, j: int) -> str:
        return self.manipulations[j] if self.manipulations else "swap"


@dataclass(frozen=True)
class BatchPlan:
    """The structure of one batch: families, names and layouts, before any pixel is drawn."""

    batch: str
    families: tuple[FamilyPlan, ...]

    def metadata_rows(self) -> list[tuple[str, str, str, str, str]]:
        """``filename, split, original, label, manipulation`` rows, sorted by filename like DFDC's."""
        rows = []
        for family in self.families:
            if family.original_present:
                rows.append((f"{family.original}.mp4", "train", "", "REAL", ""))
            rows.extend(
                (f"{fake}.mp4", "train", f"{family.original}.mp4", "FAKE", family.manipulation(j))
                for j, fake in enumerate(family.fakes)
            )
        return sorted(rows)

    @property
    def n_real(self) -> int:
        return sum(family.original_present for family in self.families)

    @property
    def n_fake(self) -> int:
        return sum(len(family.fakes) for family in self.families)

    @property
    def n_absent_originals(self) -> int:
        return sum(not family.original_present for family in self.families)


# --------------------------------------------------------------------------------------------
# Batch plan: families, names, layouts


def plan_batch(batch_index: int, spec: DemoSpec) -> BatchPlan:
    """Decide the families of a batch (who is real, who is fake of whom, frame layouts)."""
    rng = np.random.default_rng([spec.seed, batch_index, 0])
    n_videos = spec.videos_per_batch
    n_real = round(n_videos * rng.uniform(*spec.real_share))
    n_real = min(max(n_real, 1 if n_videos >= 2 else 0), n_videos // 2)

    fakes_per_present = list(rng.integers(1, _MAX_FAKES_PER_ORIGINAL + 1, size=n_real))
    while sum(fakes_per_present) > n_videos - n_real:  # never more fakes than room in the batch
        fakes_per_present[int(np.argmax(fakes_per_present))] -= 1
    # The remaining fakes come from originals absent from the data, as most do in DFDC.
    fakes_per_absent: list[int] = []
    remaining = int(n_videos - n_real - sum(fakes_per_present))
    while remaining > 0:
        size = min(remaining, int(rng.integers(1, _MAX_FAKES_PER_ORIGINAL + 1)))
        fakes_per_absent.append(size)
        remaining -= size

    shapes = [(True, int(k)) for k in fakes_per_present] + [(False, k) for k in fakes_per_absent]
    shapes = [shapes[i] for i in rng.permutation(len(shapes))]
    layouts = _assign_layouts([int(present) + k for present, k in shapes], n_videos, rng)

    # Kinds come from their own stream, so that the families (and a swap-only batch's pixels)
    # are the same whatever the list of kinds.
    n_fakes_total = sum(n_fakes for _, n_fakes in shapes)
    kinds = [spec.manipulations[i % len(spec.manipulations)] for i in range(n_fakes_total)]
    kinds = [kinds[i] for i in np.random.default_rng([spec.seed, batch_index, 3]).permutation(n_fakes_total)]

    families = []
    slot = 0
    for number, ((present, n_fakes), layout) in enumerate(zip(shapes, layouts)):
        original = _video_name(spec.seed, batch_index, slot)
        fakes = tuple(_video_name(spec.seed, batch_index, slot + 1 + j) for j in range(n_fakes))
        family_kinds = tuple(kinds[:n_fakes])
        del kinds[:n_fakes]
        slot += 1 + n_fakes
        families.append(FamilyPlan(number, original, present, fakes, layout, family_kinds))
    return BatchPlan(demo_batch_id(batch_index), tuple(families))


def planned_videos(batch_index: int, spec: DemoSpec):
    """The video table a batch will have, without drawing a pixel (a pandas DataFrame).

    Columns video_id, label (1 FAKE), original, family, manipulation (None for REAL) and
    n_frames (face files, as ingest counts them): enough to see what cleaning and splitting
    will make of a demo spec (how many REAL videos reach the test split) in milliseconds.
    """
    import pandas as pd

    rows = []
    for family in plan_batch(batch_index, spec).families:
        # The frame sets are the first draw of the family's rendering stream (see _write_families).
        first, second = _frame_sets(family.layout, spec.n_frame_slots, _family_rng(spec, batch_index, family))
        n_frames = len(first) + len(second)
        if family.original_present:
            rows.append((family.original, 0, None, family.original, None, n_frames))
        rows.extend(
            (fake, 1, family.original, family.original, family.manipulation(j), n_frames)
            for j, fake in enumerate(family.fakes)
        )
    columns = ["video_id", "label", "original", "family", "manipulation", "n_frames"]
    return pd.DataFrame(rows, columns=columns).sort_values("video_id", ignore_index=True)


def _family_rng(spec: DemoSpec, batch_index: int, family: FamilyPlan) -> np.random.Generator:
    return np.random.default_rng([spec.seed, batch_index, 1, family.number])


def _assign_layouts(family_sizes: list[int], n_videos: int, rng: np.random.Generator) -> list[str]:
    """Give whole families the rare layouts so that their video shares come close to the targets.

    Layouts belong to families (a fake has its original's frame set), so shares are reached by
    picking, per rare layout, the families whose sizes best fill its target count.
    """
    layouts = ["steady"] * len(family_sizes)
    order = list(rng.permutation(len(family_sizes)))  # random tie-breaks between equal sizes
    for layout, share in _RARE_LAYOUT_SHARES.items():
        missing = share * n_videos
        while True:
            free = [i for i in order if layouts[i] == "steady"]
            if not free:
                break
            best = min(free, key=lambda i: abs(missing - family_sizes[i]))
            if abs(missing - family_sizes[best]) >= abs(missing):
                break  # adding this family would move the share away from its target
            layouts[best] = layout
            missing -= family_sizes[best]
    return layouts


def _video_name(seed: int, batch_index: int, slot: int) -> str:
    """Ten lowercase letters, unique over all (batch_index, slot) for one seed.

    (batch_index, slot) is mapped through a keyed permutation of [0, 26**10) (a 48-bit
    permutation, cycle-walked into range), so names look random yet can never collide.
    """
    if not 0 <= slot < _SLOTS_PER_BATCH:
        raise ValueError(f"a demo batch holds at most {_SLOTS_PER_BATCH} videos")
    value = int(batch_index) * _SLOTS_PER_BATCH + int(slot)
    if value >= _NAME_SPACE:
        raise ValueError(f"batch_index {batch_index} is too large for 10-letter video names")
    keys = _name_keys(seed)
    value = _permute48(value, keys)
    while value >= _NAME_SPACE:
        value = _permute48(value, keys)
    letters = []
    for _ in range(_NAME_LETTERS):
        value, digit = divmod(value, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(letters)


def _name_keys(seed: int) -> tuple[int, ...]:
    digest = hashlib.blake2b(f"dfdetect-demo-names:{seed}".encode(), digest_size=32).digest()
    return tuple(int.from_bytes(digest[i : i + 8], "little") & ((1 << _NAME_BITS) - 1) for i in range(0, 32, 8))


def _permute48(value: int, keys: tuple[int, ...]) -> int:
    """A bijection on 48-bit integers: key addition, xorshift and odd multiplication rounds."""
    mask = (1 << _NAME_BITS) - 1
    for key in keys:
        value = (value + key) & mask
        value ^= value >> 21
        value = (value * 0x9E3779B97F4B) & mask  # odd: invertible modulo 2**48
        value ^= value >> 17
    return value


# --------------------------------------------------------------------------------------------
# Identities: procedural faces, drawn once and warped per frame


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


def _sample_identity(rng: np.random.Generator) -> Identity:
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


def _aligned_donor(donor: Identity, target: Identity) -> Identity:
    """The donor's face placed where the target's is: swaps align donor landmarks to the target."""
    return replace(donor, face_cx=target.face_cx, face_cy=target.face_cy, face_a=target.face_a, face_b=target.face_b)


def _canvas_size(image_size: int) -> int:
    return round(_CANVAS_FIELD * image_size)


def _render_identity(person: Identity, canvas: int) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# Videos: frame sets, motion, lighting, noise


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


def _frame_sets(layout: str, n_slots: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames with a first face, and frames with a second face (a subset of the first)."""
    if layout == "sparse":  # long stretches without a detectable face
        keep = rng.uniform(0.3, 0.62)
        primary = _with_gaps(n_slots, round(n_slots * (1 - keep)), int(rng.integers(1, 4)), rng)
    else:  # a few detector misses; two-actor videos are steadier so that they reach ~600 files
        max_missing = 0.05 if layout == "two_actors" else 0.15
        missing = round(n_slots * max_missing * rng.beta(1.2, 2.5))
        primary = _with_gaps(n_slots, missing, int(rng.integers(1, 5)), rng)
    frames = np.flatnonzero(primary)
    if layout == "two_actors":
        missing = round(len(frames) * 0.08 * rng.random())
        second = frames[_with_gaps(len(frames), missing, int(rng.integers(1, 4)), rng)]
    elif layout == "extra_faces":  # a bystander caught in a handful of frames
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
    pixels_per_output = canvas / (_CANVAS_FIELD * size)
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


def _warp_all(canvas: Image.Image, warps: tuple[Affine, ...], size: int, reduced: int | None = None) -> np.ndarray:
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
    canvas = _render_identity(person, _canvas_size(spec.image_size))
    warps = _motion_warps(frames, spec, rng)
    gains = _lighting(frames, spec, rng)
    noise_sigma = float(rng.uniform(1.0, 2.5))
    canvas_image = Image.fromarray(_to_uint8(canvas))
    size = spec.image_size
    pixels = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for part in _frame_blocks(len(frames)):
        block = _warp_all(canvas_image, warps[part], size).astype(np.float32)
        block *= gains[part, None, None, :]
        block += _noise(rng, block.shape, noise_sigma)
        pixels[part] = _to_uint8(block)
    return Track(face_index, person, canvas, frames, warps, gains, noise_sigma, pixels, swappable)


def _frame_blocks(n_frames: int) -> Iterator[slice]:
    """Consecutive blocks of frames: float32 work on ~1.5 MB blocks stays in the CPU cache and
    runs twice as fast as on whole-video arrays."""
    for start in range(0, n_frames, _FRAMES_PER_BLOCK):
        yield slice(start, min(start + _FRAMES_PER_BLOCK, n_frames))


def _noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian sensor noise, drawn as random bytes looked up in a table of normal quantiles.

    A 256-level normal is indistinguishable at these amplitudes and several times faster to
    draw than ``standard_normal``; a batch draws about a hundred million values.
    """
    levels = np.frombuffer(rng.bytes(math.prod(shape)), dtype=np.uint8).reshape(shape)
    return np.take(_NORMAL_QUANTILES * np.float32(sigma), levels)


def _render_original(family: FamilyPlan, spec: DemoSpec, rng: np.random.Generator) -> list[Track]:
    first, second = _frame_sets(family.layout, spec.n_frame_slots, rng)
    tracks = [_render_track(1, _sample_identity(rng), first, spec, rng, swappable=True)]
    if len(second):
        # Two-actor videos swap both actors; a bystander's few crops stay as they were.
        swappable = family.layout == "two_actors"
        tracks.append(_render_track(2, _sample_identity(rng), second, spec, rng, swappable=swappable))
    return tracks


# --------------------------------------------------------------------------------------------
# Fakes: face swaps blended into the original's frames


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
    sigma = strength.feather / _CANVAS_FIELD  # in canvas units
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
    donor = _aligned_donor(_sample_identity(rng), track.person)
    strength = _sample_strength(rng)
    donor_canvas = _render_identity(donor, canvas_size)
    mask_canvas = _swap_mask(track.person, canvas_size, strength)

    # Partial colour transfer: swap tools match the donor's colour to the target only in part.
    inside = mask_canvas > 0.5
    shift = track.canvas[inside].mean(axis=0) - donor_canvas[inside].mean(axis=0)
    donor_canvas = donor_canvas + strength.colour_correction * shift

    # Donor and mask are warped together, the mask as a fourth band: mode "RGBa" makes PIL
    # interpolate all four bands alike (it would premultiply a real RGBA), one warp per frame.
    # Rendered small and upsampled: the resampling blur that blended swaps carry.
    donor_and_mask = np.dstack([_to_uint8(donor_canvas), _to_uint8(mask_canvas * 255.0)])
    image = Image.frombuffer("RGBa", (canvas_size, canvas_size), donor_and_mask.tobytes(), "raw", "RGBa", 0, 1)
    reduced = max(8, round(size * strength.resolution))
    noise_sigma = strength.noise_match * track.noise_sigma
    fake = np.empty_like(track.pixels)
    for part in _frame_blocks(len(track.frames)):
        warped = _warp_all(image, track.warps[part], size, reduced)
        donor = warped[..., :3].astype(np.float32)
        donor *= track.gains[part, None, None, :]
        donor += _noise(rng, donor.shape, noise_sigma)
        # original + mask * (donor - original), in place
        original = track.pixels[part].astype(np.float32)
        donor -= original
        donor *= warped[..., 3:].astype(np.float32) / 255.0
        donor += original
        fake[part] = _to_uint8(donor)
    return fake


def _warped_mask(mask_canvas: np.ndarray, warps: tuple[Affine, ...], size: int) -> np.ndarray:
    """A canvas mask (float 0..1) seen through each frame's warp -> float32 (T, size, size, 1)."""
    image = Image.fromarray(_to_uint8(mask_canvas * 255.0), "L")
    return _warp_all(image, warps, size)[..., None].astype(np.float32) / 255.0


def _blend(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 ``original + mask * (generated - original)``, in place on ``generated`` (float32)."""
    base = original.astype(np.float32)
    generated -= base
    generated *= mask
    generated += base
    return _to_uint8(generated)


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
    canvases = [_render_identity(expression, canvas_size) for expression in expressions]
    feather = float(rng.uniform(0.012, 0.03))
    mask_band = _to_uint8(_feature_mask(person, canvas_size, feather) * 255.0)
    # Talking: the expression moves between the two at 1-2.5 Hz, in _EXPRESSION_STEPS poses (each
    # drawn once with the mask as a fourth band, so that a frame costs one warp).
    poses = []
    for weight in np.linspace(0.0, 1.0, _EXPRESSION_STEPS):
        pose = np.dstack([_to_uint8((1 - weight) * canvases[0] + weight * canvases[1]), mask_band])
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
    for part in _frame_blocks(len(track.frames)):
        frames = np.arange(part.start, part.stop)
        warped = np.empty((len(frames), size, size, 4), dtype=np.uint8)
        for pose in np.unique(pose_of_frame[part]):
            chosen = frames[pose_of_frame[part] == pose]
            warped[chosen - part.start] = _warp_all(poses[pose], tuple(warps[i] for i in chosen), size, reduced)
        region = warped[..., :3].astype(np.float32)
        region *= track.gains[part, None, None, :]
        region += _noise(rng, region.shape, noise_sigma)
        fake[part] = _blend(track.pixels[part], region, warped[..., 3:].astype(np.float32) / 255.0)
    return fake


def _feature_mask(person: Identity, canvas: int, feather: float) -> np.ndarray:
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
    return _gaussian_blur(hard, feather / _CANVAS_FIELD * canvas)


def _gan_upsample_track(track: Track, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """The inner face regenerated from a low-resolution copy through checkerboard-prone x2 upsamplings."""
    size = spec.image_size
    strength = _sample_strength(rng)
    mask = _warped_mask(_swap_mask(track.person, track.canvas.shape[0], strength), track.warps, size)
    steps = int(rng.integers(1, 3))  # one or two transposed-convolution-like stride-2 layers
    low = max(4, math.ceil(size / 2**steps))
    # Per layer and axis: even output phases get gain 1 + eps, odd ones 1 - eps (unequal kernel overlap).
    eps = rng.uniform(0.015, 0.05, size=(steps, 2))
    tint = 1 + rng.normal(0, 0.02, 3).astype(np.float32)  # the generator's slight colour drift
    noise_sigma = float(rng.uniform(0.0, 0.3)) * track.noise_sigma
    fake = np.empty_like(track.pixels)
    for part in _frame_blocks(len(track.frames)):
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
        generated += _noise(rng, generated.shape, noise_sigma)
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
    mask = _warped_mask(_swap_mask(track.person, track.canvas.shape[0], strength), track.warps, size)
    donor = _sample_identity(rng)
    shift = np.array(donor.skin, dtype=np.float32) - np.array(track.person.skin, dtype=np.float32)
    shift *= rng.uniform(0.4, 0.9)
    # A like-for-like skin tone is pushed to a visible difference, a far one held to a plausible one.
    magnitude = float(np.linalg.norm(shift))
    direction = shift / magnitude if magnitude > 1e-6 else np.array([0.6, -0.2, -0.77], dtype=np.float32)
    shift = direction * float(np.clip(magnitude, *_COLOUR_SHIFT))
    gain = (1 + rng.uniform(-0.06, 0.06, 3)).astype(np.float32)
    fake = np.empty_like(track.pixels)
    for part in _frame_blocks(len(track.frames)):
        generated = track.pixels[part].astype(np.float32) * gain
        generated += shift * track.gains[part, None, None, :]
        fake[part] = _blend(track.pixels[part], generated, mask[part])
    return fake


def _rescaled(warp: Affine, size: int, reduced: int) -> Affine:
    """The same canvas region seen at ``reduced`` pixels instead of ``size``."""
    a, b, c, d, e, f = warp
    k = size / reduced
    return (a * k, b * k, c, d * k, e * k, f)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round to the nearest grey level."""
    rounded = np.add(pixels, 0.5, dtype=np.float32)
    np.clip(rounded, 0, 255, out=rounded)
    return rounded.astype(np.uint8)


_MANIPULATORS: dict[str, Callable[[Track, DemoSpec, np.random.Generator], np.ndarray]] = {
    "swap": _swap_track,
    "reenact": _reenact_track,
    "gan_upsample": _gan_upsample_track,
    "colour": _colour_track,
}


# --------------------------------------------------------------------------------------------
# Writing the zip


def write_demo_batch(zip_path: str | Path, batch_index: int, spec: DemoSpec) -> DemoBatchSummary:
    """Write demo batch ``batch_index`` to ``zip_path``; byte-identical for the same arguments.

    The zip is written to a temporary file next to the target and renamed into place, so an
    interrupted job leaves no half-written batch.
    """
    started = time.perf_counter()
    target = Path(zip_path)
    batch = demo_batch_id(batch_index)
    if BATCH_FILE_PATTERN.match(target.name) and batch_id(target) != batch:
        raise ValueError(
            f"{target}: batch index {batch_index} is demo batch {batch}, but the file name says {batch_id(target)}"
        )
    plan = plan_batch(batch_index, spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, zipfile.ZipFile(temporary, "w", allowZip64=True) as archive:
        metadata = metadata_csv(plan.metadata_rows(), (*METADATA_COLUMNS, MANIPULATION_COLUMN))
        write_member(archive, METADATA_MEMBER, metadata, zipfile.ZIP_DEFLATED)
        n_files = _write_families(archive, plan, batch_index, spec)
    return DemoBatchSummary(
        batch=batch,
        path=target,
        n_real=plan.n_real,
        n_fake=plan.n_fake,
        n_absent_originals=plan.n_absent_originals,
        n_files=n_files,
        n_bytes=target.stat().st_size,
        seconds=round(time.perf_counter() - started, 3),
    )


def _write_families(archive: zipfile.ZipFile, plan: BatchPlan, batch_index: int, spec: DemoSpec) -> int:
    n_files = 0
    progress_bar = tqdm(total=plan.n_real + plan.n_fake, desc=f"demo batch {plan.batch}", unit="video", mininterval=1.0)
    with progress_bar as progress:
        for family in plan.families:
            tracks = _render_original(family, spec, _family_rng(spec, batch_index, family))
            if family.original_present:
                n_files += _write_video(archive, family.original, [(track, track.pixels) for track in tracks])
                progress.update()
            for j, fake in enumerate(family.fakes):
                fake_rng = np.random.default_rng([spec.seed, batch_index, 2, family.number, j])
                manipulate = _MANIPULATORS[family.manipulation(j)]
                crops = [
                    (track, manipulate(track, spec, fake_rng) if track.swappable else track.pixels) for track in tracks
                ]
                n_files += _write_video(archive, fake, crops)
                progress.update()
    return n_files


def _write_video(archive: zipfile.ZipFile, video_id: str, crops: list[tuple[Track, np.ndarray]]) -> int:
    """Write every face crop of one video, in frame order (`{n}.png` before `{n}_2.png`)."""
    members = sorted(
        (int(frame), track.face_index, png)
        for track, pixels in crops
        for frame, png in zip(track.frames, encode_pngs(pixels))
    )
    for frame, face_index, png in members:
        write_member(archive, face_member_name(video_id, frame, face_index), png, zipfile.ZIP_STORED)
    return len(members)
