"""A batch's plan before any pixel is drawn: families, video names, scenes and each fake's manipulation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from dfdetect.data.demo.render import frame_sets
from dfdetect.data.demo.spec import DemoSpec
from dfdetect.layout import demo_batch_id

_RARE_SCENE_SHARES = {"two_actors": 0.05, "sparse": 0.08, "extra_faces": 0.15}


_MAX_FAKES_PER_ORIGINAL = 5


_NAME_LETTERS = 10


_NAME_SPACE = 26**_NAME_LETTERS


_NAME_BITS = 48  # 2**48 > 26**10: names come from a 48-bit permutation, cycle-walked into range


_SLOTS_PER_BATCH = 2**16


@dataclass(frozen=True)
class FamilyPlan:
    """One real video and the fakes made from it; the real video may be absent from the batch."""

    number: int  # position in the batch plan; seeds the family's rendering
    original: str  # video stem of the real video
    original_present: bool
    fakes: tuple[str, ...]
    scene: str  # one of SCENES, shared by the original and its fakes
    manipulations: tuple[str, ...] = ()  # per fake: the kind that made it (MANIPULATIONS)

    def manipulation(self, j: int) -> str:
        return self.manipulations[j] if self.manipulations else "swap"


@dataclass(frozen=True)
class BatchPlan:
    """The structure of one batch: families, names and scenes, before any pixel is drawn."""

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


def plan_batch(batch_index: int, spec: DemoSpec) -> BatchPlan:
    """Decide the families of a batch (who is real, who is fake of whom, their scenes)."""
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
    scenes = _assign_scenes([int(present) + k for present, k in shapes], n_videos, rng)

    # Kinds come from their own stream, so that the families (and a swap-only batch's pixels)
    # are the same whatever the list of kinds.
    n_fakes_total = sum(n_fakes for _, n_fakes in shapes)
    kinds = [spec.manipulations[i % len(spec.manipulations)] for i in range(n_fakes_total)]
    kinds = [kinds[i] for i in np.random.default_rng([spec.seed, batch_index, 3]).permutation(n_fakes_total)]

    families = []
    slot = 0
    for number, ((present, n_fakes), scene) in enumerate(zip(shapes, scenes)):
        original = _video_name(spec.seed, batch_index, slot)
        fakes = tuple(_video_name(spec.seed, batch_index, slot + 1 + j) for j in range(n_fakes))
        family_kinds = tuple(kinds[:n_fakes])
        del kinds[:n_fakes]
        slot += 1 + n_fakes
        families.append(FamilyPlan(number, original, present, fakes, scene, family_kinds))
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
        # The frame sets are the first draw of the family's rendering stream (see write_families).
        first, second = frame_sets(family.scene, spec.n_frame_slots, family_rng(spec, batch_index, family))
        n_frames = len(first) + len(second)
        if family.original_present:
            rows.append((family.original, 0, None, family.original, None, n_frames))
        rows.extend(
            (fake, 1, family.original, family.original, family.manipulation(j), n_frames)
            for j, fake in enumerate(family.fakes)
        )
    columns = ["video_id", "label", "original", "family", "manipulation", "n_frames"]
    return pd.DataFrame(rows, columns=columns).sort_values("video_id", ignore_index=True)


def family_rng(spec: DemoSpec, batch_index: int, family: FamilyPlan) -> np.random.Generator:
    return np.random.default_rng([spec.seed, batch_index, 1, family.number])


def _assign_scenes(family_sizes: list[int], n_videos: int, rng: np.random.Generator) -> list[str]:
    """Give whole families the rare scenes so that their video shares come close to the targets.

    Scenes belong to families (a fake has its original's frame set), so shares are reached by
    picking, per rare scene, the families whose sizes best fill its target count.
    """
    scenes = ["steady"] * len(family_sizes)
    order = list(rng.permutation(len(family_sizes)))  # random tie-breaks between equal sizes
    for scene, share in _RARE_SCENE_SHARES.items():
        missing = share * n_videos
        while True:
            free = [i for i in order if scenes[i] == "steady"]
            if not free:
                break
            best = min(free, key=lambda i: abs(missing - family_sizes[i]))
            if abs(missing - family_sizes[best]) >= abs(missing):
                break  # adding this family would move the share away from its target
            scenes[best] = scene
            missing -= family_sizes[best]
    return scenes


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
