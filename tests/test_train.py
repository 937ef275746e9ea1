"""Training: every arch trains on a tiny store; resume after a real interruption; bad input names the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dfdetect.training.loader
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.landmarks.files import LandmarkPaths
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import StorePaths, pack_batch
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.training.recipes import Recipe
from dfdetect.training.resume import FAULT_ENV, FAULT_POINTS, latest_state
from dfdetect.training.train import TrainingError, TrainPaths, train_model
from tests.helpers.faces import face_68

pytestmark = pytest.mark.slow
IMAGE_SIZE = 32
N_SLOTS = 4


def tiny_videos(prefix: str, n_families: int) -> list[Video]:
    videos = []
    for family in range(n_families):
        real = f"{prefix}r{family}"
        videos.append(Video(real, "REAL", None, range(0, 40)))
        videos += [Video(f"{prefix}f{family}{k}", "FAKE", real, range(0, 40)) for k in range(2)]
    return videos


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """results/ with a packed store and splits, as the workflow leaves them."""
    results = tmp_path_factory.mktemp("train") / "results"
    videos = tiny_videos("v", 6)
    zip_path = write_face_batch(results.parent / "deepfake-detection-faces-part-0-0.zip", videos, size=IMAGE_SIZE)
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, N_SLOTS)
    pack_batch(
        zip_path,
        selection,
        "0-0",
        StorePaths.for_prefix(results / "store" / "0-0"),
        IMAGE_SIZE,
        N_SLOTS,
        progress=False,
    )
    table = manifest.videos[["video_id", "label", "family"]]
    families = sorted(table["family"].unique())
    (results / "splits").mkdir(parents=True)
    table[table["family"].isin(families[:4])].to_parquet(results / "splits/train.parquet")
    table[table["family"].isin(families[4:])].to_parquet(results / "splits/validation.parquet")
    return results


def run_training(
    results: Path,
    name: str,
    settings: dict,
    out_dir: Path | None = None,
    train_path: Path | None = None,
    store_prefix: Path | None = None,
    encoder_path: Path | None = None,
) -> dict:
    """train_model on the prepared batch; ``train_path`` / ``store_prefix`` replace its train split / store."""
    return train_model(
        name,
        settings,
        store_paths=[StorePaths.for_prefix(store_prefix or results / "store" / "0-0")],
        landmark_paths=[LandmarkPaths.for_prefix(store_prefix or results / "store" / "0-0")],
        train_path=train_path or results / "splits/train.parquet",
        validation_path=results / "splits/validation.parquet",
        paths=TrainPaths.in_folder(out_dir or results / "models" / name),
        image_size=IMAGE_SIZE,
        backend="tensorflow",
        encoder_path=encoder_path,
    )


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("cnn", {"arch": "cnn", "frames_per_video": "all", "epochs": 2, "batch_size": 8}),
        ("cnn_middle", {"arch": "cnn", "frames_per_video": "middle", "epochs": 1, "batch_size": 8}),
        (
            "effnet",
            {
                "arch": "transfer",
                "backbone": "EfficientNetB0",
                "weights": None,
                "pooling": "avg",
                "epochs": 1,
                "batch_size": 8,
            },
        ),
        ("lstm", {"arch": "td_lstm", "backbone": "cnn", "epochs": 1, "batch_size": 4}),
    ],
)
def test_each_arch_trains_and_writes_its_outputs(prepared, name, settings):
    info = run_training(prepared, name, settings)
    out = prepared / "models" / name
    for file in ("model.keras", "history.csv", "history.png", "train.json", "training_samples.png"):
        assert (out / file).stat().st_size > 0
    assert not (out / ".resume").exists()
    for run in ("train", "validation"):  # TensorBoard's event files, one run per split
        assert list((out / "tensorboard" / run).glob("events.out.tfevents.*")), run
    history = pd.read_csv(out / "history.csv")
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"} <= set(history.columns)
    assert len(history) == settings["epochs"] == info["epochs_run"]
    saved = json.loads((out / "train.json").read_text())
    assert saved["backend"] == "tensorflow" and saved["seed"] == 42
    assert saved["class_weight"] == {"0": pytest.approx(12 / 8), "1": pytest.approx(12 / 16)}
    assert 1 <= saved["best_epoch"] <= saved["epochs_run"]
    assert saved["loader_mode"] == {"cnn": "all", "cnn_middle": "middle", "effnet": "middle", "lstm": "clip"}[name]
    # speed: the first epoch (compile included) apart from the steady ones
    timed = saved["epoch_seconds"]
    assert [epoch["epoch"] for epoch in timed] == list(range(1, settings["epochs"] + 1))
    assert all(epoch["train_s"] > 0 and epoch["validation_s"] > 0 for epoch in timed)
    assert saved["first_epoch_s"] == pytest.approx(timed[0]["train_s"] + timed[0]["validation_s"], abs=0.01)
    if settings["epochs"] > 1:
        images = saved["recipe"]["n_items_per_epoch"] * (N_SLOTS if name == "lstm" else 1)
        assert saved["steady_images_per_s"] == pytest.approx(images / timed[1]["train_s"], rel=0.01)
    else:
        assert saved["steady_images_per_s"] is None
    assert saved["loader"]["workers"] == len(os.sched_getaffinity(0))  # no job threads: the usable cores
    assert saved["loader"]["processes"] == (saved["loader"]["workers"] > 1)
    import keras

    model = keras.models.load_model(out / "model.keras")
    assert model.output_shape == (None, 1)


def write_train_config(results: Path, folder: Path, name: str, settings: dict) -> Path:
    config = {"results_dir": str(results), "image_size": IMAGE_SIZE, "models": {name: settings}}
    path = folder / f"{name}-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_command(config_path: Path, name: str, out_dir: Path) -> list[str]:
    """``dfdetect train`` of model ``name`` in its own process."""
    return [
        sys.executable,
        "-m",
        "dfdetect.training.train",
        "--config",
        str(config_path),
        "--model",
        name,
        "--out-dir",
        str(out_dir),
    ]


def train_killed_at(config_path: Path, name: str, out_dir: Path, point: str) -> subprocess.CompletedProcess:
    """``dfdetect train`` SIGKILLed by its own test hook at ``point`` (EPOCH:STEP, dfdetect.training.resume)."""
    command = train_command(config_path, name, out_dir)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, FAULT_ENV: point})
    assert done.returncode == -signal.SIGKILL, f"not killed at {point} (rc {done.returncode}):\n{done.stderr[-3000:]}"
    return done


def test_train_command_refuses_a_model_folder_a_workflow_job_is_training(prepared, tmp_path, capsys):
    from dfdetect.layout import ResultsLayout
    from dfdetect.lock import job_lock
    from dfdetect.training.train import main

    config_path = write_train_config(prepared, tmp_path, "busy", {"arch": "cnn", "epochs": 1})
    with job_lock(prepared, ResultsLayout(prepared).train_log("busy")):  # as the workflow's train job holds it
        with pytest.raises(SystemExit) as stopped:
            main(["--config", str(config_path), "--model", "busy"])
    assert stopped.value.code == 2 and "another process is running this job" in capsys.readouterr().err
    assert not (prepared / "models/busy").exists()


def test_a_finished_training_is_kept_in_last_good(prepared, tmp_path):
    out = tmp_path / "kept"
    run_training(prepared, "kept", {"arch": "cnn", "epochs": 1, "batch_size": 8}, out_dir=out)
    for name in ("model.keras", "history.csv", "history.png", "train.json", "training_samples.png"):
        assert os.path.samefile(out / name, out / "last_good" / name)  # a hard link: no copy
    first = (out / "model.keras").read_bytes()
    (out / "model.keras").unlink()  # as Snakemake deletes a job's outputs before a retrain
    with pytest.raises(TrainingError, match="NoSuchNet"):  # a retrain that fails (here: at its config check)
        run_training(prepared, "kept", {"arch": "transfer", "backbone": "NoSuchNet", "weights": None}, out_dir=out)
    assert (out / "last_good/model.keras").read_bytes() == first


# A recipe that draws in every part of training: self-blended fakes on 68-point hulls, the winner's
# augmentation, dropout-free cnn (dropout's seed state: test_callbacks_restore_dropout_draws), last epoch.
RECIPE_SETTINGS = {
    "arch": "cnn",
    "frames_per_video": 2,
    "epochs": 3,
    "batch_size": 4,
    "patience": 10,
    "fakes": "sbi",
    "augment": "dfdc_winner",
    "selection": "last_epoch",
}


@pytest.fixture(scope="module")
def recipe_results(prepared, tmp_path_factory) -> Path:
    """A copy of ``prepared``'s results with 68-point landmarks for every second video."""
    import shutil

    results = tmp_path_factory.mktemp("recipe") / "results"
    shutil.copytree(prepared / "splits", results / "splits")
    store_copy(prepared, results / "store", keypoints=68)
    return results


@pytest.fixture(scope="module")
def uninterrupted(recipe_results, tmp_path_factory) -> Path:
    """``RECIPE_SETTINGS`` trained start to end by ``dfdetect train``."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    config_path = write_train_config(recipe_results, folder, "recipe", RECIPE_SETTINGS)
    subprocess.run(train_command(config_path, "recipe", folder / "recipe"), check=True, capture_output=True)
    return folder / "recipe"


def assert_same_model(first: Path, second: Path) -> None:
    """Bit for bit: every weight of model.keras and every loss of the history."""
    import keras

    for mine, theirs in zip(
        keras.models.load_model(first / "model.keras").get_weights(),
        keras.models.load_model(second / "model.keras").get_weights(),
    ):
        np.testing.assert_array_equal(mine, theirs)
    columns = ["epoch", "loss", "val_loss", "accuracy", "val_accuracy"]
    pd.testing.assert_frame_equal(
        pd.read_csv(first / "history.csv")[columns], pd.read_csv(second / "history.csv")[columns]
    )


def test_two_runs_of_one_config_are_bit_identical(recipe_results, uninterrupted, tmp_path):
    config_path = write_train_config(recipe_results, tmp_path, "recipe", RECIPE_SETTINGS)
    subprocess.run(train_command(config_path, "recipe", tmp_path / "recipe"), check=True, capture_output=True)
    assert_same_model(uninterrupted, tmp_path / "recipe")
    info = json.loads((uninterrupted / "train.json").read_text())
    assert {"cpus", "loader_workers", "tensorflow_intra_op", "tensorflow_inter_op"} <= set(info["threads"])
    assert info["selection"]["mode"] == "last_epoch" and info["best_epoch"] == RECIPE_SETTINGS["epochs"]
    assert info["recipe"]["landmark_points"] == 68 and info["recipe"]["fallback_share"] == 0.5


def test_interrupted_training_resumes_as_if_never_interrupted(recipe_results, uninterrupted, tmp_path):
    config_path = write_train_config(recipe_results, tmp_path, "recipe", RECIPE_SETTINGS)
    out = tmp_path / "recipe"
    train_killed_at(config_path, "recipe", out, "1:weights:written")  # inside the second epoch's backup
    assert not (out / "train.json").exists() and not (out / "model.keras").exists()
    assert latest_state(out / ".resume").epochs == 1  # the half-written backup is not part of any state

    subprocess.run(train_command(config_path, "recipe", out), check=True, capture_output=True)
    info = json.loads((out / "train.json").read_text())
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == list(range(3))  # every epoch once, none repeated
    assert info["resumed_after_epochs"] == 1 and info["epochs_run"] == 3
    assert not (out / ".resume").exists()
    # the same epochs' orders, augmentations and fakes, the same optimizer state: the same model
    assert_same_model(uninterrupted, out)


def test_callbacks_restore_dropout_draws(tmp_path):
    """The resume state holds the seed generators' state, which Keras's weights file lacks: a
    model with dropout resumed after an epoch ends where the uninterrupted one does."""
    import keras

    from dfdetect.training.callbacks import EpochCheckpoint
    from dfdetect.training.resume import latest_state

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 2, 32).astype("float32")

    def model() -> keras.Model:
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8,))
        hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
        built = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
        built.compile(optimizer="adam", loss="binary_crossentropy")
        return built

    def fit(work: Path, epochs: int, initial: int = 0) -> keras.Model:
        trained = model()
        state = latest_state(work) if initial else None
        trained.fit(
            x,
            y,
            batch_size=8,
            epochs=epochs,
            initial_epoch=initial,
            shuffle=False,
            verbose=0,
            validation_data=(x, y),
            callbacks=[EpochCheckpoint(work, state)],
        )
        return trained

    whole = fit(tmp_path / "whole", 2)
    (tmp_path / "parts").mkdir()
    fit(tmp_path / "parts", 1)
    assert latest_state(tmp_path / "parts").rng  # the dropout layer's seed generator
    resumed = fit(tmp_path / "parts", 2, initial=1)
    for mine, theirs in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


# Every point of the first epoch's checkpoint writes (the first epoch always writes a best model)
# and the second, last epoch's points except its best model (written only when it improves; a
# kill after its manifest means training done, outputs not yet written): 25 kills.
KILL_EPOCHS = 2
KILL_POINTS = [f"0:{point}" for point in FAULT_POINTS] + [
    f"1:{point}" for point in FAULT_POINTS if not point.startswith("best")
]
# 12 training videos, 6 validation: one batch each, so each process traces its step functions once.
# One loader worker (a thread): the 50 trainings start no worker processes (tests/test_loader_workers.py).
KILL_SETTINGS = {
    "arch": "cnn",
    "frames_per_video": "middle",
    "epochs": KILL_EPOCHS,
    "batch_size": 12,
    "patience": 10,
    "loader_workers": 1,
}


def finished_epochs_after(point: str) -> int:
    """Epochs a resume may count as done after a kill at ``point``: the manifest makes an epoch count."""
    epoch, step = point.split(":", 1)
    return int(epoch) + 1 if step in ("state:committed", "pruned") else int(epoch)


def test_kill_points_cover_every_checkpoint_write():
    assert len(KILL_POINTS) >= 20
    steps = {point.split(":", 1)[1] for point in KILL_POINTS}
    assert {"epoch_end", "pruned"} | {
        f"{step}:{when}"
        for step in ("best", "history", "weights", "state")
        for when in ("created", "written", "committed")
    } <= steps


def test_training_killed_at_each_checkpoint_point_resumes(prepared, tmp_path):
    """SIGKILL at 25 points around the epoch ends (tests/helpers/killloop.py: one forked process
    per kill, another per resume); every resume finishes with each epoch once and a loadable model."""
    spec = {
        "name": "tiny",
        "settings": KILL_SETTINGS,
        "store_prefix": str(prepared / "store/0-0"),
        "train_path": str(prepared / "splits/train.parquet"),
        "validation_path": str(prepared / "splits/validation.parquet"),
        "image_size": IMAGE_SIZE,
        "root": str(tmp_path),
        "points": KILL_POINTS,
        "parallel": 2,
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.killloop", str(spec_path)],
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = {result["point"]: result for result in map(json.loads, done.stdout.splitlines()) if "point" in result}
    assert set(results) == set(KILL_POINTS), done.stderr[-4000:]
    for point, result in results.items():
        expected = finished_epochs_after(point)
        assert result.get("killed_rc") == -signal.SIGKILL, (point, result, done.stderr[-4000:])
        assert result["state_epochs"] == expected, (point, result)
        assert result["resume_rc"] == 0, (point, result, done.stderr[-4000:])  # and the model loaded
        assert result["resumed_after_epochs"] == expected, (point, result)
        assert result["history_epochs"] == list(range(KILL_EPOCHS)), (point, result)  # each epoch once
        assert not result["resume_left"], (point, result)


@pytest.fixture(scope="module")
def kill_config(prepared, tmp_path_factory) -> tuple[Path, dict]:
    settings = {**KILL_SETTINGS, "epochs": 3}
    path = write_train_config(prepared, tmp_path_factory.mktemp("kill"), "tiny", settings)
    from dfdetect.config import load_config

    return path, load_config(path)["models"]["tiny"]  # as the CLI sees them (defaults filled in)


def test_damaged_resume_state_falls_back_then_starts_over(prepared, kill_config, tmp_path, caplog):
    config_path, settings = kill_config
    out = tmp_path / "tiny"
    train_killed_at(config_path, "tiny", out, "1:pruned")  # two states on disk: after epoch 1 and 2
    work = out / ".resume"
    newest = latest_state(work)
    assert newest.epochs == 2
    with open(work / newest.weights, "r+b") as handle:  # as a failing disk would
        handle.truncate(100)
    with caplog.at_level("WARNING", logger="dfdetect.training.train"):
        assert latest_state(work).epochs == 1
    assert "state-0001.json names weights-0001.weights.h5, whose content differs" in caplog.text

    older = json.loads((work / "state-0000.json").read_text())
    (work / older["history"]).write_text("epoch,loss\n0,1.0\n0,1.0\n")  # both states damaged now
    caplog.clear()
    with caplog.at_level("WARNING", logger="dfdetect.training.train"):
        info = run_training(prepared, "tiny", settings, out_dir=out)
    assert "no consistent resume state" in caplog.text and info["resumed_after_epochs"] == 0
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == list(range(3))


def test_td_lstm_on_a_trained_frame_encoder(prepared, tmp_path):
    import keras

    from dfdetect.training.models import load_model

    run_training(prepared, "frame_cnn", {"arch": "cnn", "epochs": 1, "batch_size": 8}, out_dir=tmp_path / "frame_cnn")
    settings = {"arch": "td_lstm", "encoder_from": "frame_cnn", "epochs": 1, "batch_size": 4}
    with pytest.raises(TrainingError, match="two_stage.*encoder_path"):
        run_training(prepared, "two_stage", settings, out_dir=tmp_path / "two_stage")
    run_training(
        prepared, "two_stage", settings, out_dir=tmp_path / "two_stage", encoder_path=tmp_path / "frame_cnn/model.keras"
    )
    frame_model = load_model(tmp_path / "frame_cnn/model.keras")
    clip_model = load_model(tmp_path / "two_stage/model.keras")
    encoder = clip_model.get_layer("frame_features").layer
    # the frame model's layers, frozen: unchanged by training the LSTM on top of them
    for name in ("block1_conv1", "dense_256"):
        for kept, original in zip(encoder.get_layer(name).get_weights(), frame_model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(kept, original)
    assert isinstance(clip_model.get_layer("lstm_64"), keras.layers.LSTM)


def test_data_parallel_code_path_on_one_device(prepared):
    info = run_training(
        prepared,
        "mirrored",
        {"arch": "cnn", "frames_per_video": "all", "epochs": 1, "batch_size": 4, "distribute": "always"},
    )
    assert info["distribution"]["replicas"] == 1
    assert "MirroredStrategy" in info["distribution"]["description"]
    assert info["distribution"]["global_batch_size"] == 4
    import keras

    assert keras.models.load_model(prepared / "models/mirrored/model.keras").output_shape == (None, 1)


TWO_DEVICES_SCRIPT = """
import json, sys
from pathlib import Path

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
import pandas as pd

import dfdetect.training.models
from dfdetect.data.store import FrameStore, StorePaths
from dfdetect.training.loader import FrameDataset
from dfdetect.training.train import TrainPaths, train_model

built = []  # the model the trainer builds, to score it as it is in the training process
build_model = dfdetect.training.models.build_model
dfdetect.training.models.build_model = lambda *args, **kwargs: built.append(build_model(*args, **kwargs)) or built[-1]

results, out = Path(sys.argv[1]), Path(sys.argv[2])
store = StorePaths.for_prefix(results / "store/0-0")
settings = {"arch": "cnn", "frames_per_video": "all", "epochs": 1, "batch_size": 4, "distribute": "always"}
info = train_model(
    "two_devices", settings, store_paths=[store], train_path=results / "splits/train.parquet",
    validation_path=results / "splits/validation.parquet", paths=TrainPaths.in_folder(out), image_size=32,
    backend="tensorflow",
)
validation = FrameDataset(FrameStore([store]), pd.read_parquet(results / "splits/validation.parquet"),
                          mode="all", batch_size=64)
frames = {"frames": np.concatenate([validation[index][0]["frames"] for index in range(len(validation))])}
in_process = built[0].predict(frames, verbose=0)
reloaded = keras.models.load_model(out / "model.keras").predict(frames, verbose=0)
print("RESULT " + json.dumps({"distribution": info["distribution"], "frames": len(frames["frames"]),
                              "largest_difference": float(np.abs(in_process - reloaded).max()),
                              "spread": float(in_process.std())}))
"""


def test_data_parallel_on_two_devices(prepared, tmp_path):
    """Two logical CPU devices (in a subprocess: TensorFlow's devices are fixed once it starts)."""
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES_SCRIPT, str(prepared), str(tmp_path / "two_devices")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    distribution = result["distribution"]
    assert distribution["replicas"] == 2 and len(distribution["devices"]) == 2
    assert distribution["global_batch_size"] == 2 * 4  # batch_size is per device
    assert "MirroredStrategy over 2 device(s)" in distribution["description"]
    saved = json.loads((tmp_path / "two_devices/train.json").read_text())
    assert saved["distribution"] == distribution
    assert result["frames"] == 2 * N_SLOTS * 3  # the 6 validation videos' frames, all scored
    assert result["spread"] > 0  # the scores are not all alike (a test that could not fail otherwise)
    assert result["largest_difference"] < 1e-5


def test_changed_settings_do_not_resume_an_old_run(prepared):
    out = prepared / "models" / "changed"
    (out / ".resume").mkdir(parents=True)
    (out / ".resume" / "fingerprint.txt").write_text("something-else\n")
    (out / ".resume" / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,1.0\n1,0.9,0.9\n")
    info = run_training(prepared, "changed", {"arch": "cnn", "epochs": 1, "batch_size": 8})
    assert info["resumed_after_epochs"] == 0 and info["epochs_run"] == 1


def test_single_class_split_names_the_model(prepared, tmp_path):
    train = pd.read_parquet(prepared / "splits/train.parquet")
    train[train["label"] == 1].to_parquet(tmp_path / "fakes_only.parquet")
    with pytest.raises(TrainingError, match="model 'solo'.*only FAKE videos"):
        run_training(
            prepared,
            "solo",
            {"arch": "cnn", "epochs": 1},
            out_dir=tmp_path / "solo",
            train_path=tmp_path / "fakes_only.parquet",
        )


def test_video_missing_from_the_store_names_the_model(prepared, tmp_path):
    train = pd.read_parquet(prepared / "splits/train.parquet")
    extra = pd.DataFrame({"video_id": ["notpacked"], "label": [0], "family": ["notpacked"]})
    pd.concat([train, extra]).to_parquet(tmp_path / "train.parquet")
    with pytest.raises(TrainingError, match="model 'gap'.*notpacked"):
        run_training(
            prepared,
            "gap",
            {"arch": "cnn", "epochs": 1},
            out_dir=tmp_path / "gap",
            train_path=tmp_path / "train.parquet",
        )
    with pytest.raises(TrainingError, match="model 'nostore'.*missing"):
        run_training(
            prepared,
            "nostore",
            {"arch": "cnn", "epochs": 1},
            out_dir=tmp_path / "nostore",
            store_prefix=prepared / "store/9-9",
        )


def test_bad_backbone_and_weights_name_the_model(prepared, tmp_path):
    from dfdetect.training.backbones import ModelConfigError
    from dfdetect.training.train import TrainingError

    with pytest.raises(TrainingError, match="effnet_typo.*backbone.*did you mean 'EfficientNetB0'"):
        run_training(
            prepared,
            "effnet_typo",
            {"arch": "transfer", "backbone": "EfficientNetBO", "weights": None},
            out_dir=tmp_path / "a",
        )
    with pytest.raises(ModelConfigError, match="local_weights.*does not exist"):
        run_training(
            prepared,
            "local_weights",
            {"arch": "transfer", "backbone": "EfficientNetB0", "weights": str(tmp_path / "missing.weights.h5")},
            out_dir=tmp_path / "b",
        )


# ---------------------------------------------------------------- training recipes


def store_copy(prepared: Path, folder: Path, keypoints: int | bool) -> Path:
    """The store in ``folder`` (so that its landmarks do not leak into other tests), with landmarks
    for every second video: five (``keypoints`` True or 5) or 68 points per face."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for part in ("frames.npy", "mask.npy", "index.parquet"):
        shutil.copy(prepared / f"store/0-0.{part}", folder / f"0-0.{part}")
    if keypoints:
        mask = np.load(folder / "0-0.mask.npy")
        face = face_68(IMAGE_SIZE) if keypoints == 68 else np.array([(10, 12), (22, 12), (16, 18), (11, 25), (21, 25)])
        landmarks = np.full(mask.shape + face.shape, np.nan, np.float32)
        landmarks[::2] = face
        np.save(folder / "0-0.landmarks.npy", landmarks)
    return folder / "0-0"


def test_recipe_without_its_landmarks_fails_before_training(prepared, tmp_path):
    prefix = store_copy(prepared, tmp_path / "store", keypoints=False)
    for name, settings in (("winner", {"augment": "dfdc_winner"}), ("blended", {"fakes": "both"})):
        with pytest.raises(TrainingError, match=f"model '{name}'.*needs landmarks.*batch 0-0.*landmarks rule"):
            run_training(
                prepared, name, {"arch": "cnn", "epochs": 1, **settings}, out_dir=tmp_path / name, store_prefix=prefix
            )
        assert not (tmp_path / name / "training_samples.png").exists()


def test_sbi_without_real_videos_fails_clearly(prepared, tmp_path):
    train = pd.read_parquet(prepared / "splits/train.parquet")
    train[train["label"] == 1].to_parquet(tmp_path / "fakes_only.parquet")
    with pytest.raises(TrainingError, match="model 'sbi_fakes'.*self-blended fakes.*no REAL video"):
        run_training(
            prepared,
            "sbi_fakes",
            {"arch": "cnn", "epochs": 1, "fakes": "sbi"},
            out_dir=tmp_path / "sbi_fakes",
            train_path=tmp_path / "fakes_only.parquet",
            store_prefix=store_copy(prepared, tmp_path / "store", keypoints=True),
        )


def test_sbi_and_winner_recipe_trains_on_real_videos_only(prepared, tmp_path, monkeypatch):
    recipes = []

    class Recording(dfdetect.training.loader.FrameDataset):
        def __init__(self, *args, recipe=None, **kwargs):
            recipes.append(recipe)
            super().__init__(*args, recipe=recipe, **kwargs)

    monkeypatch.setattr(dfdetect.training.loader, "FrameDataset", Recording)
    train = pd.read_parquet(prepared / "splits/train.parquet")
    train[train["label"] == 0].to_parquet(tmp_path / "reals_only.parquet")  # sbi needs no labelled fake
    info = run_training(
        prepared,
        "sbi_winner",
        {
            "arch": "cnn",
            "frames_per_video": "all",
            "epochs": 1,
            "batch_size": 8,
            "fakes": "sbi",
            "augment": "dfdc_winner",
        },
        out_dir=tmp_path / "sbi_winner",
        train_path=tmp_path / "reals_only.parquet",
        store_prefix=store_copy(prepared, tmp_path / "store", keypoints=True),
    )
    n_real_samples = 4 * N_SLOTS  # 4 REAL videos in the train split, every filled slot
    assert info["recipe"] == {
        "augment": "dfdc_winner",
        "fakes": "sbi",
        "needs_landmarks": True,
        "landmark_points": 5,
        "samples_with_landmarks": 2 * N_SLOTS,
        "samples_with_fallback": 2 * N_SLOTS,
        "fallback_share": 0.5,
        "n_items_per_epoch": 2 * n_real_samples,
        "n_sbi_fakes_per_epoch": n_real_samples,
    }
    # chosen on self-blended fakes of the validation split's 2 REAL videos (every slot), no labelled fake
    assert info["selection"] == {
        "mode": "self_blended",
        "validation": "self_blended",
        "description": "lowest validation loss on the validation split's REAL frames, each with a self-blended fake",
        "n_validation_items": 2 * 2 * N_SLOTS,
        "n_validation_fakes": 2 * N_SLOTS,
    }
    assert info["class_weight"] == {"0": 1.0, "1": 1.0}  # half real, half self-blended in every epoch
    assert (tmp_path / "sbi_winner/training_samples.png").stat().st_size > 0
    train_recipe, validation_recipe = recipes
    assert train_recipe.fakes == "sbi" and validation_recipe == Recipe("none", "sbi")  # never augmented
