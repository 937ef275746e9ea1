"""Self-blended images: the fake changes only the (dilated) face region; recipes pair reals with their fakes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.config import ConfigError, _check_recipes
from dfdetect.data.landmarks import face_ellipse, face_hull, fallback_keypoints
from dfdetect.training.augment import sample_rng
from dfdetect.training.recipes import Recipe, RecipeError, RecipePlan
from dfdetect.training.sbi import SelfBlender

SIZE = 64
KEYPOINTS = np.array([(24, 26), (40, 26), (32, 36), (26, 46), (38, 46)], dtype=np.float32)


def face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)) > 0


@pytest.mark.parametrize("keypoints", [KEYPOINTS, None], ids=["landmarks", "fallback"])
def test_fake_differs_from_its_real_frame_only_inside_the_dilated_mask(keypoints):
    blender = SelfBlender(SIZE)
    for sample in range(6):
        blend = blender.blend(face(sample), keypoints, sample_rng(0, 0, sample))
        changed = (blend.fake != blend.target).any(axis=-1)
        assert changed.any() and blend.fake.dtype == np.uint8
        assert not changed[blend.mask == 0].any()  # outside the blend mask: the real frame, untouched
        # the mask is the face region moved a few percent and blurred: within a dilation of it
        assert not changed[~dilate(blend.region, SIZE // 6)].any()
        assert blend.used_landmarks == (keypoints is not None)


def test_ratio_one_reproduces_the_source_inside_the_mask():
    blend = SelfBlender(SIZE).blend(face(3), KEYPOINTS, sample_rng(0, 0, 3), ratio=1.0)
    full = blend.mask == 1.0
    assert full.any()
    assert np.array_equal(blend.fake[full], blend.source[full])
    # the pair's real frame is exactly the target the fake was blended into
    assert np.array_equal(SelfBlender(SIZE).target_of(face(3), sample_rng(0, 0, 3)), blend.target)
    half = SelfBlender(SIZE).blend(face(3), KEYPOINTS, sample_rng(0, 0, 3), ratio=0.5)
    assert half.mask.max() == pytest.approx(0.5)


def test_face_hull_spans_brows_to_chin_and_falls_back_to_the_ellipse():
    hull = face_hull(KEYPOINTS, SIZE)
    assert all(hull[int(y), int(x)] for x, y in KEYPOINTS)
    rows = np.flatnonzero(hull.any(axis=1))
    assert rows[0] < 26 - 4 and rows[-1] > 46 + 6  # above the eyes (brows), below the mouth (chin)
    assert np.array_equal(face_hull(None, SIZE), face_ellipse(SIZE))
    assert np.array_equal(face_hull(np.full((5, 2), np.nan), SIZE), face_ellipse(SIZE))
    ellipse = face_ellipse(SIZE)
    assert ellipse[SIZE // 2, SIZE // 2] and not ellipse[0, 0] and 0.3 < ellipse.mean() < 0.6
    assert all(ellipse[int(y), int(x)] for x, y in fallback_keypoints(SIZE))


SBI, BOTH = Recipe(augment="none", fakes="sbi"), Recipe(augment="none", fakes="both")


def samples(labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": [f"v{k}" for k in range(len(labels))],
            "label": np.array(labels, "float32"),
            "batch": "0-0",
            "row": range(len(labels)),
            "slot": 0,
        }
    )


def test_sbi_plan_pairs_each_real_frame_with_its_fake():
    landmarks = {"0-0": np.full((5, 1, 5, 2), np.nan, np.float32)}
    plan = RecipePlan(SBI, samples([0, 1, 0, 1, 1]), image_size=SIZE, seed=1, landmarks=landmarks)
    assert plan.item_sample.tolist() == [0, 0, 2, 2] and plan.item_labels.tolist() == [0, 1, 0, 1]
    order = plan.order(epoch=3, shuffle=True)
    assert [plan.item_sample[order[k]] == plan.item_sample[order[k + 1]] for k in (0, 2)] == [True, True]
    assert plan.landmark_counts() == {"landmarks": 0, "fallback": 2}  # the served (REAL) samples
    both = RecipePlan(BOTH, samples([0, 1, 0, 1, 1]), image_size=SIZE, seed=1, landmarks=landmarks)
    assert both.item_labels.tolist() == [0, 1, 0, 1, 1, 1, 1] and both.item_sbi.sum() == 2


def test_sbi_pair_shares_its_post_augmentation():
    landmarks = {"0-0": np.full((1, 1, 5, 2), np.nan, np.float32)}
    plan = RecipePlan(SBI, samples([0]), image_size=SIZE, seed=1, landmarks=landmarks)
    frames = np.stack([face(7), face(7)])
    outlines: list = []
    plan.apply(frames, np.array([0, 1]), epoch=0, outlines=outlines)
    outside = ~dilate(face_ellipse(SIZE), SIZE // 8)
    # identical post-augmentation (colour, JPEG, flip): the pair agrees far from the face
    assert np.abs(frames[0].astype(int) - frames[1].astype(int))[outside].max() <= 12
    assert outlines[0] is None and outlines[1] is not None and outlines[1].any()
    alone = plan.apply(face(7)[None].copy(), np.array([1]), epoch=0)  # the fake without its real in the batch
    assert np.array_equal(alone[0], frames[1])


def test_sbi_without_real_videos_or_on_clips_fails_clearly():
    with pytest.raises(RecipeError, match="no REAL video"):
        RecipePlan(SBI, samples([1, 1]), image_size=SIZE, seed=0, landmarks={"0-0": None})
    with pytest.raises(RecipeError, match="clip models"):
        RecipePlan(BOTH, samples([0, 1]), image_size=SIZE, seed=0, landmarks={}, clip_slots=np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="unknown fakes 'generated'"):
        Recipe(augment="none", fakes="generated")
    with pytest.raises(ConfigError, match="models.clip.fakes.*td_lstm"):  # before any job runs
        _check_recipes({"clip": {"arch": "td_lstm", "fakes": "sbi"}, "frames": {"arch": "cnn", "fakes": "both"}})
