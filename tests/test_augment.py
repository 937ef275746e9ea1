"""Augmentation presets: repeatable per (seed, epoch, sample), uint8 in and out, face-part cutout in place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.ingest import ingest_batch
from dfdetect.data.landmarks import jaw_and_brows
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.training.augment import (
    Augmenter,
    black_out_part,
    blackout_convex_hull,
    choose_part,
    dfdc_winner_pipeline,
    face_part_cutout,
    preset_name,
    sample_rng,
    seed_pipeline,
)
from dfdetect.training.loader import FrameDataset
from dfdetect.training.recipes import Recipe
from tests.helpers.faces import face_68

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
    transforms = dfdc_winner_pipeline(SIZE).transforms
    # the winner's list without IsotropicResize + PadIfNeeded, no-ops on crops at the model's size
    assert [type(transform).__name__ for transform in transforms] == [
        "ImageCompression",
        "GaussNoise",
        "GaussianBlur",
        "HorizontalFlip",
        "OneOf",
        "ToGray",
        "Affine",
    ]
    assert transforms[-1].keep_ratio  # ShiftScaleRotate's one scale for both axes


def test_winner_affine_scales_both_axes_alike():
    import albumentations as A

    affine = dfdc_winner_pipeline(SIZE).transforms[-1]
    only = A.Compose([A.Affine(**{**affine.get_transform_init_args(), "p": 1, "rotate": (0, 0)})])
    square = np.zeros((SIZE, SIZE, 3), np.uint8)
    square[8:24, 8:24] = 255
    for sample in range(20):
        seed_pipeline(only, sample_rng(0, 0, sample))
        out = only(image=square)["image"][..., 0] > 127
        rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
        assert abs(len(rows) - len(cols)) <= 1  # the square stays a square: no separate x and y scales


def test_same_seed_same_batch_other_epoch_other_batch(store):
    def batch(epoch: int, seed: int = 3) -> np.ndarray:
        dataset = FrameDataset(
            store, videos(store), mode="all", batch_size=8, shuffle=False, recipe=WINNER, landmarks=NO_FACES, seed=seed
        )
        dataset.epoch = epoch
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


def test_blackout_convex_hull_blacks_out_one_half_of_the_jaw_and_brows():
    import cv2

    points = face_68(SIZE)
    polygon = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(polygon, [np.round(jaw_and_brows(points)).astype(np.int32)], 1)
    halves = set()
    for sample in range(40):
        image = np.full((SIZE, SIZE, 3), 200, np.uint8)
        halves.add(blackout_convex_hull(image, points, sample_rng(0, 0, sample)))
        black = (image == 0).all(axis=-1)
        assert not black[polygon == 0].any()  # only inside the face outline
        assert 0.3 < black.sum() / polygon.sum() < 0.7  # about half of it
    assert halves == {"upper", "lower", "left", "right"}


def test_cutout_shares_follow_the_winner_and_the_hull_needs_68_points():
    def shares(keypoints) -> dict:
        done = [face_part_cutout(texture(0)[0], keypoints, sample_rng(0, 0, k)) for k in range(3000)]
        return {
            "part": np.mean([kind in ("eyes", "mouth", "nose") for kind in done]),
            "hull": np.mean([str(kind).startswith("hull_") for kind in done]),
        }

    with_68 = shares(face_68(SIZE))
    assert with_68["part"] == pytest.approx(0.7 * 0.875, abs=0.03)
    assert with_68["hull"] == pytest.approx(0.3 * 0.2, abs=0.015)  # classifier_dataset.py:272-276
    assert shares(EYES_AND_MOUTH)["hull"] == 0 and shares(None)["hull"] == 0


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
