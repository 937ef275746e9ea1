"""Damaged inputs (a frame store cut short, a model that is no archive, a table of garbage): train,
evaluate, robustness and predict each name the file and the next step, not a bare library error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dfdetect.corrupt import CorruptFileError
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.training.backend import select_backend

select_backend("tensorflow")  # before anything imports Keras

from dfdetect.evaluation import predict  # noqa: E402
from dfdetect.evaluation.evaluate import EvaluationPaths, evaluate_model  # noqa: E402
from dfdetect.evaluation.robustness import RobustnessPaths, evaluate_robustness  # noqa: E402
from dfdetect.training.models import build_model  # noqa: E402
from dfdetect.training.train import TrainingError, TrainPaths, train_model  # noqa: E402

IMAGE_SIZE, N_SLOTS = 16, 4
SETTINGS = {"arch": "cnn", "epochs": 1, "batch_size": 8}
REBUILD = "remove it and rerun `snakemake`"


def store(results: Path) -> StorePaths:
    return StorePaths.for_prefix(results / "store/0-0")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A packed batch, train/validation/test splits and an (untrained) saved model, as the workflow leaves them."""
    results = tmp_path_factory.mktemp("corrupt") / "results"
    videos = family_batch("", 3, 2, range(0, 40))
    zip_path = write_face_batch(results.parent / "deepfake-detection-faces-part-0-0.zip", videos, size=IMAGE_SIZE)
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, N_SLOTS)
    pack_batch(zip_path, selection, "0-0", store(results), IMAGE_SIZE, N_SLOTS, progress=False)
    table = manifest.videos[["video_id", "label", "family"]]
    (results / "splits").mkdir()
    for number, split in enumerate(("train", "validation", "test")):
        table[table["family"] == f"real{number}"].to_parquet(results / f"splits/{split}.parquet")
    (results / "models/m").mkdir(parents=True)
    build_model("m", SETTINGS, IMAGE_SIZE, N_SLOTS).save(results / "models/m/model.keras")
    return results


@pytest.fixture
def damaged(prepared, tmp_path):
    """A copy of the prepared results and a function that cuts one of its files short."""
    results = tmp_path / "results"
    shutil.copytree(prepared, results)
    shutil.copy(prepared.parent / "deepfake-detection-faces-part-0-0.zip", tmp_path)

    def damage(relative: str, keep: float = 0.5) -> Path:
        path = results / relative
        with open(path, "r+b") as handle:
            handle.truncate(int(path.stat().st_size * keep))
        return path

    return results, damage


def train(results: Path):
    return train_model(
        "m",
        SETTINGS,
        store_paths=[store(results)],
        train_path=results / "splits/train.parquet",
        validation_path=results / "splits/validation.parquet",
        paths=TrainPaths.in_folder(results / "models/new"),
        image_size=IMAGE_SIZE,
        backend="tensorflow",
    )


def scoring(results: Path) -> dict:
    """What evaluate and robustness both take: the model, the store, the test split, the scoring settings."""
    return dict(
        model_path=results / "models/m/model.keras",
        store_paths=[store(results)],
        test_path=results / "splits/test.parquet",
        backend="tensorflow",
        aggregation="mean",
        batch_size=16,
        seed=0,
    )


def evaluate(results: Path):
    paths = EvaluationPaths.in_folder(results / "eval/m")
    validation = results / "splits/validation.parquet"
    calibration = {"calibration_path": results / "models/m/calibration.json", "calibration_method": "temperature"}
    return evaluate_model(
        "m",
        SETTINGS,
        **scoring(results),
        validation_path=validation,
        paths=paths,
        n_resamples=10,
        **calibration,
        calibration_bins=10,
    )


def robustness(results: Path):
    return evaluate_robustness("m", **scoring(results), paths=RobustnessPaths.in_folder(results / "eval/m"))


STAGES = {"train": train, "evaluate": evaluate, "robustness": robustness}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("part", ["frames.npy", "mask.npy", "index.parquet"])
def test_a_damaged_frame_store_file_is_named_with_the_fix(damaged, stage, part):
    results, damage = damaged
    path = damage(f"store/0-0.{part}")
    with pytest.raises((CorruptFileError, TrainingError)) as raised:
        STAGES[stage](results)
    message = str(raised.value)
    assert f"{path} cannot be read (" in message and "damaged or incomplete" in message and REBUILD in message
    assert not (results / "eval/m/metrics.json").exists()


@pytest.mark.parametrize("stage", ["evaluate", "robustness"])
@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_damaged_model_is_named_with_the_fix_not_file_not_found(damaged, stage, keep):
    results, damage = damaged
    path = damage("models/m/model.keras", keep)
    with pytest.raises(CorruptFileError) as raised:
        STAGES[stage](results)
    message = str(raised.value)
    assert message.startswith(f"{path} cannot be read (not a Keras model archive")
    assert "remove it and rerun `snakemake` to retrain" in message and "File not found" not in message


def test_a_zip_that_is_no_model_is_named_with_the_fix(damaged):
    results, _ = damaged
    fake = results / "models/m/model.keras"
    shutil.copyfile(results.parent / "deepfake-detection-faces-part-0-0.zip", fake)
    with pytest.raises(CorruptFileError, match=f"^{fake} cannot be read \\(Keras cannot load it: .*to retrain"):
        evaluate(results)


@pytest.mark.parametrize(("stage", "split"), [("train", "train"), ("evaluate", "test"), ("robustness", "test")])
def test_a_damaged_split_table_is_named_with_the_fix(damaged, stage, split):
    results, _ = damaged
    path = results / f"splits/{split}.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises((CorruptFileError, TrainingError)) as raised:
        STAGES[stage](results)
    assert f"{path} cannot be read (" in str(raised.value) and REBUILD in str(raised.value)


def test_store_files_of_different_packs_are_named(damaged):
    results, _ = damaged
    paths = store(results)
    np.save(paths.mask, np.zeros((2, N_SLOTS), dtype=bool))  # replaced by hand with another batch's
    with pytest.raises(CorruptFileError, match=f"^{paths.frames} cannot be read .* disagree.*remove the three files"):
        FrameStore([store(results)])


def test_predict_names_a_damaged_model_with_the_fix(damaged, capsys):
    results, damage = damaged
    path = damage("models/m/model.keras")
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(results.parent / "deepfake-detection-faces-part-0-0.zip"), "--model", str(path)])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"{path} cannot be read (not a Keras model archive" in message and "to retrain" in message
