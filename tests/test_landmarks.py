"""Landmarks: MTCNN finds a real face's eyes in a packed store, no face gives NaN, and only the train jobs
whose recipe needs them wait for them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dfdetect.data.landmarks import LandmarkPaths, LandmarksMissing, landmark_store, load_landmarks
from dfdetect.data.store import StorePaths
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs_detail
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
def test_landmarks_find_a_real_faces_eyes_and_nan_without_a_face(tmp_path):
    pytest.importorskip("skimage")
    from dfdetect.data.faces.detect import load_detector

    frames = np.zeros((2, 2, SIZE, SIZE, 3), dtype=np.uint8)
    frames[0, 0] = astronaut_face(SIZE)
    frames[1, 0] = 128  # a grey frame: no face
    mask = np.array([[True, False], [True, False]])  # slot 1 of each video is empty
    write_store(tmp_path / "0-0", frames, mask)
    out = LandmarkPaths.for_prefix(tmp_path / "0-0")
    counts = landmark_store(StorePaths.for_prefix(tmp_path / "0-0"), out, load_detector("CPU:0"), progress=False)
    assert counts == {"frames": 2, "found": 1, "share": 0.5}
    keypoints, boxes = np.load(out.landmarks), np.load(out.boxes)
    assert keypoints.shape == (2, 2, 5, 2) and keypoints.dtype == np.float32 and boxes.shape == (2, 2, 5)
    for found, expected in zip(keypoints[0, 0, :2], EYES_IN_CROP):
        assert np.abs(found / SIZE - np.array(expected)).max() < 0.05  # within 3 px at 64 px
    assert boxes[0, 0, 4] > 0.9
    assert np.isnan(keypoints[1, 0]).all() and np.isnan(keypoints[:, 1]).all() and np.isnan(boxes[1]).all()


def test_missing_or_stale_landmarks_name_the_batch(tmp_path):
    masks = {"0-0": np.ones((2, 3), bool), "0-1": np.ones((1, 3), bool)}
    batches = [LandmarkPaths.for_prefix(tmp_path / batch) for batch in ("0-0", "0-1")]
    np.save(batches[0].landmarks, np.full((2, 3, 5, 2), np.nan, np.float32))
    with pytest.raises(LandmarksMissing, match="batch 0-1: landmarks .*0-1.landmarks.npy is missing"):
        load_landmarks(batches, masks)
    np.save(batches[1].landmarks, np.full((4, 3, 5, 2), np.nan, np.float32))
    with pytest.raises(LandmarksMissing, match="batch 0-1: .*shape"):
        load_landmarks(batches, masks)


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
