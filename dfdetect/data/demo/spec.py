"""What a demo batch is made of: its settings (``DemoSpec``, config section ``demo``), the kinds of
fakes and the scenes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dfdetect.config import SectionSettings

# Scenes: who is in which frames of a video (dfdetect.data.demo.plan gives each its share of a batch).
SCENES = ("steady", "sparse", "two_actors", "extra_faces")
# The kinds of fakes (dfdetect.data.demo.manipulations.MANIPULATORS makes each).
MANIPULATIONS = ("swap", "reenact", "gan_upsample", "colour")


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
