"""Self-blended images: the fake changes only the (dilated) face region, with the reference's parameters;
recipes pair reals with their fakes, post-augment them alike and move the landmarks with them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dfdetect.training.augment
from dfdetect.config import _check_recipes
from dfdetect.config_errors import ConfigError
from dfdetect.data.landmarks.geometry import LEFT_EYE, RIGHT_EYE, face_ellipse, face_hull, fallback_keypoints
from dfdetect.training.augment import sample_rng
from dfdetect.training.recipes import Recipe, RecipeError, RecipePlan
from dfdetect.training.sbi import CROP_JITTER, SelfBlender, crop_window
from tests.helpers.faces import face_68

SIZE = 64
KEYPOINTS = np.array([(24, 26), (40, 26), (32, 36), (26, 46), (38, 46)], dtype=np.float32)


def face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)) > 0


@pytest.mark.parametrize("keypoints", [face_68(SIZE), KEYPOINTS, None], ids=["68", "5", "fallback"])
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
        assert blend.hull == {None: "ellipse", 5: "outline5"}.get(
            None if keypoints is None else len(keypoints), blend.hull
        )


def test_source_target_step_always_changes_the_colour():
    # HueSaturationValue and RandomBrightnessContrast with p 1 (src/utils/sbi.py:114-115): every pair's
    # augmented copy carries a colour mismatch, not only the downscale or sharpen
    image = face(11)
    shifts = []
    for sample in range(60):
        target, source = SelfBlender(SIZE).split(image, sample_rng(0, 0, sample))
        changed = source if not np.array_equal(source, image) else target
        shifts.append(np.abs(changed.reshape(-1, 3).mean(0) - image.reshape(-1, 3).mean(0)).max())
    assert np.mean(np.array(shifts) > 1.0) >= 0.95


def test_an_empty_warped_mask_is_not_served_as_a_fake(monkeypatch):
    blender = SelfBlender(SIZE)
    calls = []

    def lost(source, region, rng):  # the warp moved the region off the crop every time
        calls.append(1)
        return source, np.zeros(region.shape, np.float32)

    monkeypatch.setattr(blender, "_warped_mask", lost)
    blend = blender.blend(face(4), face_68(SIZE), sample_rng(0, 0, 4), ratio=1.0)
    assert len(calls) == 3 and blend.mask.max() == pytest.approx(1.0)
    assert (blend.fake != blend.target).any()


def test_post_moves_the_landmarks_with_the_flip_and_the_crop():
    blender = SelfBlender(SIZE)
    flipped = cropped = 0
    for sample in range(30):
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        x, y = np.round(KEYPOINTS[LEFT_EYE]).astype(int)
        image[y - 1 : y + 2, x - 1 : x + 2] = 255  # a marker on the left eye
        post = blender.post(image, sample_rng(0, 0, sample, 2), keypoints=KEYPOINTS)
        marker = np.argwhere(post.image.max(axis=-1) > 100).mean(axis=0)[::-1]
        # flipped, the marked eye is the image's right one now, and the points are relabelled
        is_flipped = np.linalg.norm(marker - post.keypoints[RIGHT_EYE]) < np.linalg.norm(
            marker - post.keypoints[LEFT_EYE]
        )
        eye = post.keypoints[RIGHT_EYE if is_flipped else LEFT_EYE]
        assert np.linalg.norm(marker - eye) < 2.0, sample
        assert post.keypoints[LEFT_EYE, 0] < post.keypoints[RIGHT_EYE, 0]
        flipped += is_flipped
        cropped += not np.allclose(np.linalg.norm(post.keypoints[1] - post.keypoints[0]), 16.0)
    assert 5 <= flipped <= 25 and cropped >= 12  # both x sides stop at the edge in a quarter of the draws


def test_crop_window_jitters_each_side_by_the_references_share_of_the_face_box():
    box = np.array([10, 8, 54, 60], np.float32)  # 44 x 52 px
    windows = np.array([crop_window(box, SIZE, np.random.default_rng(seed)) for seed in range(400)])
    insets = np.stack([windows[:, 0], windows[:, 1], SIZE - windows[:, 2], SIZE - windows[:, 3]], axis=1)
    limits = np.ceil(CROP_JITTER * np.array([44, 52, 44, 52])) + 1
    assert (insets >= 0).all() and (insets <= limits).all()
    assert ((insets == 0).mean(axis=0) > 0.4).all()  # outwards draws stop at the crop's edge
    assert (insets.max(axis=0) >= limits - 2).all()


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


def test_both_gives_labelled_fakes_the_source_target_step_too():
    landmarks = {"0-0": np.full((2, 1, 68, 2), np.nan, np.float32)}
    plan = RecipePlan(BOTH, samples([1, 0]), image_size=SIZE, seed=1, landmarks=landmarks)
    blender = SelfBlender(SIZE)
    changed = 0
    for epoch in range(8):
        served = plan.apply(face(5)[None].copy(), np.array([0]), epoch=epoch)[0]  # item 0: the labelled fake
        target = blender.split(face(5), sample_rng(1, epoch, 0, 1))[0]
        expected = blender.post(target, sample_rng(1, epoch, 0, 2)).image
        assert np.array_equal(served, expected)
        changed += not np.array_equal(target, face(5))
    assert 1 <= changed <= 7  # the stored frame or, p 0.5, its source-target augmented copy, as for reals


def test_self_blended_validation_is_the_same_every_epoch_and_not_post_augmented():
    landmarks = {"0-0": np.broadcast_to(face_68(SIZE), (2, 1, 68, 2)).copy()}
    plan = RecipePlan(SBI, samples([0, 0]), image_size=SIZE, seed=3, landmarks=landmarks, validation=True)
    assert plan.order(5, shuffle=True).tolist() == plan.order(0, shuffle=True).tolist()
    stored = np.stack([face(1), face(1), face(2), face(2)])
    first = plan.apply(stored.copy(), np.arange(4), epoch=0)
    assert np.array_equal(first, plan.apply(stored.copy(), np.arange(4), epoch=7))
    assert np.array_equal(first[0], SelfBlender(SIZE).target_of(face(1), sample_rng(3, 0, 0, 1)))  # no post
    assert plan.item_labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(RecipeError, match="never augmented"):
        RecipePlan(Recipe("flip", "sbi"), samples([0]), image_size=SIZE, seed=0, landmarks=landmarks, validation=True)


def test_winner_cutout_after_sbi_gets_the_flipped_landmarks(monkeypatch):
    seen = []

    def record(image, keypoints, rng):
        seen.append(None if keypoints is None else np.array(keypoints))

    monkeypatch.setattr(dfdetect.training.augment, "face_part_cutout", record)
    landmarks = {"0-0": np.broadcast_to(face_68(SIZE), (1, 1, 68, 2)).copy()}
    plan = RecipePlan(Recipe("dfdc_winner", "sbi"), samples([0]), image_size=SIZE, seed=2, landmarks=landmarks)
    blender = SelfBlender(SIZE)
    for epoch in range(6):
        seen.clear()
        plan.apply(np.stack([face(6), face(6)]), np.array([0, 1]), epoch=epoch)
        target = blender.split(face(6), sample_rng(2, epoch, 0, 1))[0]
        expected = blender.post(target, sample_rng(2, epoch, 0, 2), keypoints=face_68(SIZE)).keypoints
        assert len(seen) == 2 and all(np.allclose(points, expected) for points in seen)


def test_sbi_without_real_videos_or_on_clips_fails_clearly():
    with pytest.raises(RecipeError, match="no REAL video"):
        RecipePlan(SBI, samples([1, 1]), image_size=SIZE, seed=0, landmarks={"0-0": None})
    with pytest.raises(RecipeError, match="clip models"):
        RecipePlan(BOTH, samples([0, 1]), image_size=SIZE, seed=0, landmarks={}, clip_slots=np.zeros((2, 1), int))
    with pytest.raises(ValueError, match="unknown fakes 'generated'"):
        Recipe(augment="none", fakes="generated")
    with pytest.raises(ConfigError, match="models.clip.fakes.*td_lstm"):  # before any job runs
        _check_recipes({"clip": {"arch": "td_lstm", "fakes": "sbi"}, "frames": {"arch": "cnn", "fakes": "both"}})
    with pytest.raises(ConfigError, match="models.clip.selection.*td_lstm"):
        _check_recipes({"clip": {"arch": "td_lstm", "selection": "self_blended"}})
    with pytest.raises(ValueError, match="unknown selection 'best'"):
        Recipe(augment="none", fakes="sbi", selection="best")
    assert Recipe("none", "sbi").selection == "self_blended" and Recipe("none", "both").selection == "labelled"
    assert Recipe("none", "labelled", "self_blended").needs_landmarks
    assert Recipe("none", "sbi", "last_epoch").validation == "self_blended"
