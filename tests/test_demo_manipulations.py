"""Demo manipulation kinds (swap, reenact, gan_upsample, colour), the REAL share, and the planned video table."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.clean import clean_videos
from dfdetect.data.demo import MANIPULATIONS, DemoSpec, plan_batch, planned_videos, write_demo_batch
from dfdetect.data.demo.manipulations import MANIPULATORS, feature_mask, warped_mask
from dfdetect.data.demo.render import render_original
from dfdetect.data.facebatch import METADATA_MEMBER, read_metadata
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.splits import split_videos
from dfdetect.layout import batch_file_name, demo_batch_id

ROOT = Path(__file__).resolve().parents[1]
SMALL = DemoSpec.of(videos_per_batch=12, image_size=40, n_frame_slots=60, seed=11)
MIXED = DemoSpec.of(videos_per_batch=12, image_size=40, n_frame_slots=60, seed=11, manipulations=MANIPULATIONS)
TRACK_SPEC = DemoSpec.of(videos_per_batch=16, image_size=48, n_frame_slots=40, seed=3)
# The demo's settings for the main data and the unseen set (config.yaml):
MAIN_DEMO = DemoSpec.of(videos_per_batch=40, real_share=(0.35, 0.40), seed=7, manipulations=("swap", "reenact"))
UNSEEN_DEMO = DemoSpec.of(
    videos_per_batch=32, real_share=(0.30, 0.35), seed=8, manipulations=("gan_upsample", "colour")
)


def write(folder: Path, batch_index: int, spec: DemoSpec) -> Path:
    path = folder / batch_file_name(demo_batch_id(batch_index))
    write_demo_batch(path, batch_index, spec)
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def metadata(path: Path) -> pd.DataFrame:
    with zipfile.ZipFile(path) as archive:
        return read_metadata(archive.read(METADATA_MEMBER), str(path))


@pytest.fixture(scope="module")
def swap_and_mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("demo-kinds")
    return write(folder / "swap", 0, SMALL), write(folder / "mixed", 0, MIXED)


@pytest.fixture(scope="module")
def tracks_and_fakes() -> list[tuple[object, dict[str, np.ndarray]]]:
    """First-face tracks of a few families, each faked by every kind with the same fake seed."""
    result = []
    for family in plan_batch(0, TRACK_SPEC).families[:5]:
        track = render_original(family.scene, TRACK_SPEC, np.random.default_rng([3, 0, 1, family.number]))[0]
        fakes = {
            kind: manipulate(track, TRACK_SPEC, np.random.default_rng([5, family.number]))
            for kind, manipulate in MANIPULATORS.items()
        }
        result.append((track, fakes))
    return result


# --- assignment and metadata ------------------------------------------------------------------


def test_kinds_are_spread_evenly_over_each_batchs_fakes_and_named_in_metadata():
    spec = DemoSpec.of(manipulations=("swap", "reenact", "colour"))
    for index in range(6):
        plan = plan_batch(index, spec)
        counts = Counter(row[4] for row in plan.metadata_rows() if row[3] == "FAKE")
        assert set(counts) == {"swap", "reenact", "colour"}
        assert max(counts.values()) - min(counts.values()) <= 1
        assert all(row[4] == "" for row in plan.metadata_rows() if row[3] == "REAL")


def test_the_list_of_kinds_changes_neither_families_nor_reals_nor_swap_fakes(swap_and_mixed):
    swap_path, mixed_path = swap_and_mixed
    swap, mixed = metadata(swap_path), metadata(mixed_path)
    assert swap.drop(columns="manipulation").equals(mixed.drop(columns="manipulation"))
    assert set(mixed["manipulation"].dropna()) == set(MANIPULATIONS)
    swap_members, mixed_members = members(swap_path), members(mixed_path)
    assert swap_members.keys() == mixed_members.keys()
    kind = dict(zip(mixed["video_id"], mixed["manipulation"]))
    for name, data in swap_members.items():
        if name == METADATA_MEMBER:
            continue
        video = name.split("/")[0]
        if kind[video] in (None, "swap"):
            assert mixed_members[name] == data, f"{name}: REAL videos and swap fakes do not depend on the other kinds"
    for video in (video for video, value in kind.items() if value not in (None, "swap")):
        changed = [
            name for name in swap_members if name.startswith(f"{video}/") and swap_members[name] != mixed_members[name]
        ]
        assert changed, f"{video} ({kind[video]}) is not the swap any more"


def test_rewriting_a_mixed_batch_gives_identical_bytes(tmp_path, swap_and_mixed):
    again = write(tmp_path, 0, MIXED)
    assert again.read_bytes() == swap_and_mixed[1].read_bytes()


def test_planned_videos_are_what_ingest_reads(swap_and_mixed):
    mixed_path = swap_and_mixed[1]
    videos = ingest_batch(mixed_path, "0-0").videos.sort_values("video_id", ignore_index=True)
    planned = planned_videos(0, MIXED)
    assert planned["video_id"].tolist() == videos["video_id"].tolist()
    assert planned["label"].tolist() == videos["label"].tolist()
    assert planned["family"].tolist() == videos["family"].tolist()
    assert planned["n_frames"].tolist() == videos["n_frames"].tolist()
    assert planned["manipulation"].fillna("").tolist() == videos["manipulation"].fillna("").tolist()


# --- pixels: each kind's trace ----------------------------------------------------------------


def test_every_kind_changes_the_face_and_leaves_the_border(tracks_and_fakes):
    size = TRACK_SPEC.image_size
    border = np.ones((size, size), dtype=bool)
    border[5:-5, 5:-5] = False
    for track, fakes in tracks_and_fakes:
        for kind, fake in fakes.items():
            assert fake.shape == track.pixels.shape and fake.dtype == np.uint8
            difference = np.abs(fake.astype(np.int16) - track.pixels)
            assert difference.mean() > 0.3, f"{kind} barely changes the video"
            # The inner-face mask's feathered tail may reach the chin's edge of the crop, no more.
            assert difference[:, border].mean() < 0.05 * difference.mean(), f"{kind} changes the crop's border"


def test_reenact_changes_only_the_eyes_and_mouth(tracks_and_fakes):
    size = TRACK_SPEC.image_size
    for track, fakes in tracks_and_fakes:
        canvas = track.canvas.shape[0]
        # the eye and mouth regions, widened well past the feather and the per-frame jitter
        regions = warped_mask(feature_mask(track.person, canvas, 0.08), track.warps, size)[..., 0] > 0.004
        difference = np.abs(fakes["reenact"].astype(np.int16) - track.pixels).max(axis=-1)
        assert not difference[~regions].any(), "identity unchanged: nothing outside the eyes and mouth moves"
        assert difference[regions].mean() > 1.5


def alternation(frames: np.ndarray) -> float:
    """Mean strength of the period-2 pattern along rows and columns of the crop's central square."""
    size = frames.shape[1]
    centre = frames[:, size // 4 : size // 4 + 2 * (size // 4), size // 4 : size // 4 + 2 * (size // 4)]
    grey = centre.astype(np.float64).mean(axis=-1)
    sign = (-1.0) ** np.arange(grey.shape[1])
    rows = np.abs((grey.mean(axis=2) * sign).sum(axis=1))
    columns = np.abs((grey.mean(axis=1) * sign).sum(axis=1))
    return float((rows + columns).mean() / grey.shape[1])


def high_frequency(frames: np.ndarray) -> float:
    x = frames.astype(np.float64)
    size = x.shape[1]
    inner = x[:, size // 3 : 2 * size // 3, size // 3 : 2 * size // 3]
    return float(np.mean(np.abs(np.diff(inner, axis=1))) + np.mean(np.abs(np.diff(inner, axis=2))))


def test_gan_upsample_leaves_a_checkerboard(tracks_and_fakes):
    for track, fakes in tracks_and_fakes:
        assert alternation(fakes["gan_upsample"]) > 2.5 * alternation(track.pixels)
        assert alternation(fakes["colour"]) < 2.5 * alternation(track.pixels)  # no checkerboard from a colour change


def test_colour_keeps_the_structure_and_shifts_the_colour(tracks_and_fakes):
    size = TRACK_SPEC.image_size
    for track, fakes in tracks_and_fakes:
        fake = fakes["colour"]
        assert high_frequency(fake) == pytest.approx(high_frequency(track.pixels), rel=0.15)
        centre = slice(size // 3, 2 * size // 3)
        shift = fake[:, centre, centre].astype(np.float64).mean(axis=(0, 1, 2)) - track.pixels[:, centre, centre].mean(
            axis=(0, 1, 2)
        )
        assert np.linalg.norm(shift) > 8, "a visible colour change of the inner face"


# --- REAL share and the demo's settings --------------------------------------------------------


def test_real_share_sets_the_share_of_real_videos_per_batch():
    spec = DemoSpec.of(real_share=(0.35, 0.40))
    for index in range(8):
        plan = plan_batch(index, spec)
        assert 0.33 <= plan.n_real / (plan.n_real + plan.n_fake) <= 0.42
        assert all(family.fakes for family in plan.families), "every REAL video present still has fakes"
    assert DemoSpec.of(real_share=[0.1, 0.15]) == DemoSpec.of() and DemoSpec.of(manipulations=["swap"]) == DemoSpec.of()


def kept_videos(spec: DemoSpec, n_batches: int) -> pd.DataFrame:
    videos = pd.concat(
        [planned_videos(index, spec).assign(batch=demo_batch_id(index)) for index in range(n_batches)],
        ignore_index=True,
    )
    cleaned = clean_videos(videos, 200, 400)  # config.yaml's frames.min / frames.max
    return cleaned[cleaned["keep"]]


def test_the_demo_settings_give_enough_real_videos_for_the_test_split_and_the_unseen_set():
    # main demo: 4 batches; its test split (config.yaml's split settings) holds >= 10 REAL videos
    test = split_videos(kept_videos(MAIN_DEMO, 4), test=0.2, validation=0.2, seed=2006)["test"]
    assert (test["label"] == 0).sum() >= 10 and (test["label"] == 1).sum() >= 10
    assert set(test["manipulation"].dropna()) == {"swap", "reenact"}
    # the unseen set (never split): 2 batches, >= 10 REAL and >= 30 FAKE after cleaning
    unseen = kept_videos(UNSEEN_DEMO, 2)
    assert (unseen["label"] == 0).sum() >= 10 and (unseen["label"] == 1).sum() >= 30
    assert set(unseen["manipulation"].dropna()) == {"gan_upsample", "colour"}
    # the default demo is as it was: 3 REAL videos in its test split
    default_test = split_videos(kept_videos(DemoSpec.of(), 4), test=0.2, validation=0.2, seed=2006)["test"]
    assert (default_test["label"] == 0).sum() == 3


def test_a_mixed_batch_decodes_as_rgb_pngs(swap_and_mixed):
    from PIL import Image

    for name, data in list(members(swap_and_mixed[1]).items())[1::97]:
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (40, 40)), name
