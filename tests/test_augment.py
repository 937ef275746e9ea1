"""Augmentation presets: repeatable per (seed, epoch, sample), uint8 in and out, face-part cutout in place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.training.augment import (
    Augmenter,
    black_out_part,
    choose_part,
    dfdc_winner_pipeline,
    preset_name,
    sample_rng,
)
from dfdetect.training.loader import FrameDataset
from dfdetect.training.recipes import Recipe

SIZE = 32
FLIP = Recipe(augment="flip", fakes="labelled")
WINNER = Recipe(augment="dfdc_winner", fakes="labelled")
NO_FACES = {"0-0": np.full((6, 4, 5, 2), np.nan)}  # landmarks without a face anywhere: the fallback
EYES_AND_MOUTH = np.array([(10, 12), (22, 12), (16, 18), (11, 25), (21, 25)], dtype=np.float32)


def texture(seed: int, count: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One batch of 3 REAL and 3 FAKE videos, 4 slots each, with textured frames (flat ones hide flips)."""
    folder = tmp_path_factory.mktemp("augment-store")
    videos = [Video(f"r{k}", frames=range(0, 40, 10)) for k in range(3)]
    videos += [Video(f"f{k}", "FAKE", f"r{k}", range(0, 40, 10)) for k in range(3)]
    zip_path = write_face_batch(folder / "deepfake-detection-faces-part-0-0.zip", videos, size=SIZE)
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, 4)
    pack_batch(zip_path, selection, "0-0", StorePaths.for_prefix(folder / "store" / "0-0"), SIZE, 4, progress=False)
    store = FrameStore.from_folder(folder / "store")
    store.frames["0-0"] = texture(0, 24).reshape(6, 4, SIZE, SIZE, 3)
    return store


def videos(store) -> pd.DataFrame:
    table = store.index[["video_id"]].copy()
    table["label"] = table["video_id"].str.startswith("f").astype(int)
    return table


def test_preset_names_and_the_old_boolean():
    assert preset_name(True) == "flip" and preset_name(False) == "none"
    assert [preset_name(name) for name in ("none", "flip", "dfdc_winner")] == ["none", "flip", "dfdc_winner"]
    with pytest.raises(ValueError, match="unknown augment preset 'rotate'"):
        preset_name("rotate")


def test_winner_pipeline_keeps_uint8_and_shape():
    augmenter = Augmenter("dfdc_winner", SIZE)
    for sample in range(8):
        image, _ = augmenter(texture(sample)[0], sample_rng(1, 0, sample), EYES_AND_MOUTH)
        assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
    assert len(dfdc_winner_pipeline(SIZE).transforms) == 8  # the winner's list, PadIfNeeded folded into the resize


def test_same_seed_same_batch_other_epoch_other_batch(store):
    def batch(epoch: int, seed: int = 3) -> np.ndarray:
        dataset = FrameDataset(
            store, videos(store), mode="all", batch_size=8, shuffle=False, recipe=WINNER, landmarks=NO_FACES, seed=seed
        )
        dataset.set_epoch(epoch)
        return dataset[0][0]["frames"]

    first, again = batch(0), batch(0)
    assert first.dtype == np.uint8 and np.array_equal(first, again)
    assert not np.array_equal(first, batch(1))
    assert not np.array_equal(first, batch(0, seed=4))


def test_flip_draws_per_sample_not_per_batch(store):
    # The same sample flips the same way in an epoch whatever batch (or batch size) serves it.
    small = FrameDataset(store, videos(store), mode="all", batch_size=2, recipe=FLIP, seed=1)
    large = FrameDataset(store, videos(store), mode="all", batch_size=24, recipe=FLIP, seed=1)
    assert np.array_equal(np.concatenate([small[i][0]["frames"] for i in range(len(small))]), large[0][0]["frames"])


def test_validation_batches_are_never_augmented(store):
    # A loader without a recipe (validation, test) serves the stored frames exactly.
    dataset = FrameDataset(store, videos(store), mode="all", batch_size=24, seed=1)
    frames = dataset[0][0]["frames"]
    stored = store.frames["0-0"].reshape(24, SIZE, SIZE, 3)
    assert np.array_equal(frames, stored)


def test_cutout_blacks_out_the_band_between_the_landmarks():
    for part, inside, outside in [
        ("eyes", [(16, 12), (11, 12), (21, 12)], [(16, 25), (3, 3), (16, 20)]),
        ("mouth", [(16, 25), (12, 25), (20, 25)], [(16, 12), (16, 5), (3, 30)]),
        ("nose", [(16, 15), (16, 17)], [(3, 3), (16, 28), (29, 16)]),
    ]:
        image = np.full((SIZE, SIZE, 3), 200, dtype=np.uint8)
        black_out_part(image, part, EYES_AND_MOUTH)
        assert all((image[y, x] == 0).all() for x, y in inside), part
        assert all((image[y, x] == 200).all() for x, y in outside), part
        # the band is as wide as the winner's: a quarter of the eye distance (12 px) each side, at least
        if part == "eyes":
            assert (image[12 - 3 : 12 + 4, 16] == 0).all() and (image[12 + 6 :, 16] == 200).all()


def test_cutout_part_shares_follow_the_winner():
    parts = [choose_part(sample_rng(0, 0, k)) for k in range(4000)]
    shares = {part: parts.count(part) / len(parts) for part in ("eyes", "mouth", "nose", None)}
    assert shares["eyes"] == pytest.approx(0.5, abs=0.03)
    assert shares["mouth"] == pytest.approx(0.25, abs=0.03)
    assert shares["nose"] == pytest.approx(0.125, abs=0.03)


def test_clip_frames_share_one_draw_and_padding_stays_empty(store):
    original = store.frames["0-0"]
    same = np.broadcast_to(texture(9)[0], original.shape).copy()  # every frame of every clip alike
    store.frames["0-0"] = same
    try:
        dataset = FrameDataset(
            store, videos(store).iloc[:2], mode="clip", batch_size=2, seed=5, recipe=WINNER, landmarks=NO_FACES
        )
        clips = dataset[0][0]
        frames, mask = clips["frames"], clips["mask"]
        assert frames.dtype == np.uint8 and frames.shape == (2, 4, SIZE, SIZE, 3)
        for clip, filled in zip(frames, mask):
            kept = clip[filled]
            assert all(np.array_equal(kept[0], frame) for frame in kept)  # one draw for the whole clip
            assert not clip[~filled].any()
        assert not np.array_equal(frames[0][0], frames[1][0])  # but another one for another clip
    finally:
        store.frames["0-0"] = original
