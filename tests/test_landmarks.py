"""Landmarks: dlib68 and MTCNN find a real face's eyes in a packed store, no face gives NaN, the 68-point
geometry (mirror, forehead, hull variants) is right, and only the train jobs whose recipe needs them wait."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dfdetect.data.landmarks import (
    BROWS,
    CHIN_68,
    HULL_VARIANTS,
    LandmarkPaths,
    LandmarkSettings,
    LandmarksMissing,
    face_hull,
    five_points,
    forehead_points,
    hull_variant,
    landmark_store,
    load_landmark_model,
    load_landmarks,
    mirror_keypoints,
    sbi_region,
)
from dfdetect.data.store import StorePaths
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs_detail
from tests.helpers.faces import face_68
from tests.helpers.workflow import dry_run, snakemake, workflow_config

SIZE = 64
# skimage's astronaut (512 x 512): the face crop and, inside it, where her eyes are (checked by eye)
ASTRONAUT_CROP = (154, 48, 293, 187)  # x1, y1, x2, y2
EYES_IN_CROP = [(50 / 139, 52 / 139), (91 / 139, 54 / 139)]  # left eye, right eye, shares of the crop side


def astronaut_face(size: int) -> np.ndarray:
    from skimage import data

    crop = data.astronaut()[ASTRONAUT_CROP[1] : ASTRONAUT_CROP[3], ASTRONAUT_CROP[0] : ASTRONAUT_CROP[2]]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR))


def write_store(prefix, frames: np.ndarray, mask: np.ndarray) -> None:
    paths = StorePaths.for_prefix(prefix)
    paths.frames.parent.mkdir(parents=True, exist_ok=True)
    np.save(paths.frames, frames)
    np.save(paths.mask, mask)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dlib68", "mtcnn5"])
def test_landmarks_find_a_real_faces_eyes_and_nan_without_a_face(tmp_path, model):
    pytest.importorskip("skimage")
    frames = np.zeros((2, 2, SIZE, SIZE, 3), dtype=np.uint8)
    frames[0, 0] = astronaut_face(SIZE)
    frames[1, 0] = 128  # a grey frame: no face
    mask = np.array([[True, False], [True, False]])  # slot 1 of each video is empty
    write_store(tmp_path / "0-0", frames, mask)
    out = LandmarkPaths.for_prefix(tmp_path / "0-0")
    model_ = load_landmark_model(LandmarkSettings.of(model=model))
    counts = landmark_store(StorePaths.for_prefix(tmp_path / "0-0"), out, model_, progress=False)
    points = 68 if model == "dlib68" else 5
    assert counts == {"points": points, "frames": 2, "found": 1, "fallback": 1, "share": 0.5, "fallback_share": 0.5}
    keypoints, boxes = np.load(out.landmarks), np.load(out.boxes)
    assert keypoints.shape == (2, 2, points, 2) and keypoints.dtype == np.float32 and boxes.shape == (2, 2, 5)
    for found, expected in zip(five_points(keypoints[0, 0])[:2], EYES_IN_CROP):
        assert np.abs(found / SIZE - np.array(expected)).max() < 0.05  # within 3 px at 64 px
    assert boxes[0, 0, 4] > (0.9 if model == "mtcnn5" else 0)  # MTCNN's confidence, dlib's HOG score
    assert np.isnan(keypoints[1, 0]).all() and np.isnan(keypoints[:, 1]).all() and np.isnan(boxes[1]).all()


@pytest.mark.slow
def test_mirrored_points_are_the_mirrored_faces_points():
    """dlib68 on the flipped face finds the flipped points, each under its mirrored name."""
    pytest.importorskip("skimage")
    model = load_landmark_model(LandmarkSettings.from_mapping())
    face = astronaut_face(SIZE)
    points, _ = model.detect(np.stack([face, face[:, ::-1]]))
    assert not np.isnan(points).any()
    error = np.linalg.norm(mirror_keypoints(points[0], SIZE) - points[1], axis=-1)
    assert np.median(error) < 1.0 and error.max() < 3.5  # px at 64 px: the predictor is not exactly symmetric
    np.testing.assert_array_equal(mirror_keypoints(mirror_keypoints(points[0], SIZE), SIZE), points[0])
    five = five_points(points[0])
    np.testing.assert_allclose(mirror_keypoints(mirror_keypoints(five, SIZE), SIZE), five)


def test_forehead_arc_rises_above_the_brows_and_widens_the_hull():
    points = face_68(SIZE)
    forehead = forehead_points(points)
    brow_top = points[BROWS][:, 1].min()
    assert forehead.shape == (13, 2) and forehead[6, 1] < brow_top - 0.3 * (points[CHIN_68, 1] - brow_top)
    assert forehead[0, 0] < points[BROWS][:, 0].min() and forehead[-1, 0] > points[BROWS][:, 0].max()
    assert np.all(np.diff(forehead[:, 0]) > 0)  # left to right
    with_forehead = face_hull(points, SIZE)
    plain = hull_variant(points, SIZE, "facehull")
    assert (plain <= with_forehead).all() and with_forehead.sum() > 1.15 * plain.sum()
    assert with_forehead[: int(brow_top) - 5].any() and not plain[: int(brow_top) - 1].any()


def test_hull_variants_cover_the_face_and_sbi_draws_them_all():
    points = face_68(SIZE)
    nose = tuple(np.round(points[30]).astype(int))
    areas = {}
    for variant in HULL_VARIANTS:
        mask = hull_variant(points, SIZE, variant)
        assert mask.dtype == np.uint8 and mask[nose[1], nose[0]] == 1, variant
        areas[variant] = int(mask.sum())
    assert areas["extended"] > areas["components"]  # the brows raised
    rng = np.random.default_rng(0)
    kinds = [sbi_region(points, SIZE, rng)[1] for _ in range(200)]
    assert set(kinds) == set(HULL_VARIANTS)
    assert sbi_region(None, SIZE, rng)[1] == "ellipse"
    assert sbi_region(five_points(points), SIZE, rng)[1] == "outline5"
    assert sbi_region(np.full((68, 2), np.nan), SIZE, rng)[1] == "ellipse"


def test_missing_or_stale_landmarks_name_the_batch(tmp_path):
    masks = {"0-0": np.ones((2, 3), bool), "0-1": np.ones((1, 3), bool)}
    batches = [LandmarkPaths.for_prefix(tmp_path / batch) for batch in ("0-0", "0-1")]
    np.save(batches[0].landmarks, np.full((2, 3, 5, 2), np.nan, np.float32))
    with pytest.raises(LandmarksMissing, match="batch 0-1: landmarks .*0-1.landmarks.npy is missing"):
        load_landmarks(batches, masks)
    np.save(batches[1].landmarks, np.full((4, 3, 5, 2), np.nan, np.float32))
    with pytest.raises(LandmarksMissing, match="batch 0-1: .*shape"):
        load_landmarks(batches, masks)
    np.save(batches[1].landmarks, np.full((1, 3, 68, 2), np.nan, np.float32))
    with pytest.raises(LandmarksMissing, match="batch 0-1: .*holds 68 points per face, the other batches 5"):
        load_landmarks(batches, masks)
    np.save(batches[0].landmarks, np.full((2, 3, 68, 2), np.nan, np.float32))
    assert load_landmarks(batches, masks)["0-1"].shape == (1, 3, 68, 2)


def two_batches_and_recipe_models(tmp_path):
    for number, batch in enumerate(("0-0", "0-1")):
        videos = []
        for family in range(3):  # three families a batch: enough to split
            real = f"b{number}r{family}"
            videos += [
                Video(real, "REAL", None, range(0, 40)),
                Video(f"b{number}f{family}", "FAKE", real, range(0, 40)),
            ]
        write_face_batch(tmp_path / "raw" / f"deepfake-detection-faces-part-{batch}.zip", videos, size=16)
    config = workflow_config(
        tmp_path,
        image_size=16,
        frames={"min": 2, "max": 100, "step": 10, "count": 4},
        models={
            "plain": {"arch": "cnn", "augment": True},
            "winner": {"arch": "cnn", "augment": "dfdc_winner"},
            "blended": {"arch": "cnn", "fakes": "sbi", "augment": False, "epochs": 1, "batch_size": 4},
        },
    )
    return config


@pytest.mark.workflow
def test_only_recipes_that_need_landmarks_wait_for_them(tmp_path):
    config = two_batches_and_recipe_models(tmp_path)
    assert "landmarks" not in dry_run(tmp_path, config, "results/models/plain/model.keras")
    for model in ("winner", "blended"):
        done = snakemake(tmp_path, config, f"results/models/{model}/model.keras", "-n")
        jobs = planned_jobs_detail(done.stdout)
        assert {job["wildcards"]["batch"] for job in jobs if job["rule"] == "landmarks"} == {"0-0", "0-1"}


@pytest.mark.workflow
@pytest.mark.slow
def test_a_recipe_model_trains_through_the_landmarks_rule(tmp_path):
    """The landmarks jobs open the store files their rule declares, and train opens theirs."""
    config = two_batches_and_recipe_models(tmp_path)
    snakemake(tmp_path, config, "results/models/blended/model.keras", "--cores", "2")
    for batch in ("0-0", "0-1"):
        landmarks = LandmarkPaths.for_prefix(tmp_path / "results/store" / batch)
        mask = np.load(StorePaths.for_prefix(tmp_path / "results/store" / batch).mask)
        assert np.load(landmarks.landmarks).shape[:2] == mask.shape
    assert (tmp_path / "results/models/blended/train.json").exists()
