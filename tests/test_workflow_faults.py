"""Nothing lost, whatever the user does: names that would escape results_dir, deleted or damaged
outputs, a killed Snakemake whose job lives on, and temporaries of a killed writer.

Each case runs the workflow as a user would (`snakemake` in its own folder) on one small batch and
one tiny model, trained once and copied into each test's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfdetect.atomic import is_temporary
from dfdetect.faults import FAULT_ENV, HOLD_ENV
from dfdetect.lock import JOBS_DIR, LOCK_NAME, read_holder
from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs
from tests.helpers.workflow import snakemake, snakemake_command, tiny_models_config, workflow_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

MODEL = "tiny"
TRAIN_FILES = ("model.keras", "history.csv", "history.png", "train.json", "training_samples.png")


def one_batch(raw: Path) -> None:
    """4 families of a REAL video and 2 fakes, 40 face files each: enough for a test and validation family."""
    write_face_batch(raw / "deepfake-detection-faces-part-0-0.zip", family_batch("", 4, 2, range(0, 40)), size=16)


def small_config(workdir: Path, name: str = "test-config.yaml", **model_settings) -> Path:
    model = {"arch": "cnn", "frames_per_video": "all", "epochs": 1, "batch_size": 16, **model_settings}
    return tiny_models_config(workdir, {MODEL: model}, name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("wf-faults")
    one_batch(workdir / "raw")
    snakemake(workdir, small_config(workdir))
    return workdir


@pytest.fixture
def workdir(trained, tmp_path) -> Path:
    """A copy of the trained working folder (results and Snakemake's records, times kept)."""
    copy = tmp_path / "work"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def nothing_to_do(workdir: Path) -> bool:
    return planned_jobs(snakemake(workdir, workdir / "test-config.yaml", "-n").stdout) == {}


# ---------------------------------------------------------------- 1: names and folders


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"evaluation": {"sets": {"..": {"raw_dir": "raw"}}}},
            "key 'evaluation.sets...': '..' cannot be a name",
        ),
        ({"evaluation": {"sets": {".": {"raw_dir": "raw"}}}}, "key 'evaluation.sets..': '.' cannot be a name"),
        ({"models": {"..": {"arch": "cnn"}}}, "key 'models...': '..' cannot be a name"),
        ({"models": {"...": {"arch": "cnn"}}}, "key 'models....': '...' cannot be a name"),
        ({"results_dir": "raw"}, "key 'raw_dir': 'raw' and results_dir 'raw' are the same folder"),
        ({"raw_dir": "results/demo/raw"}, "key 'raw_dir': 'results/demo/raw' and results_dir 'results'"),
        ({"results_dir": "raw/results"}, "key 'results_dir': 'raw/results' is inside raw_dir 'raw'"),
    ],
)
def test_names_and_folders_that_would_overwrite_other_data_stop_the_run_before_any_job(tmp_path, settings, message):
    one_batch(tmp_path / "raw")
    one_batch(tmp_path / "results/demo/raw")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.zip")}
    config = workflow_config(tmp_path, **settings)
    done = snakemake(tmp_path, config, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and f"Invalid configuration: config {message}" in output, output[-3000:]
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.zip")} == before
    assert sorted(path.name for path in tmp_path.rglob("*.parquet")) == []  # no job ran


def test_a_raw_zip_whose_name_is_no_batch_id_stops_the_run(tmp_path):
    one_batch(tmp_path / "raw")
    (tmp_path / "raw/deepfake-detection-faces-part-0-0.zip").rename(
        tmp_path / "raw/deepfake-detection-faces-part-..-1.zip"
    )
    done = snakemake(tmp_path, workflow_config(tmp_path), check=False)
    assert done.returncode != 0
    assert "Invalid configuration: config key 'raw_dir': '" in done.stderr
    assert "raw/deepfake-detection-faces-part-..-1.zip' is not named like a" in done.stderr


def test_home_in_results_dir_is_the_home_folder_for_every_job(tmp_path):
    home = tmp_path / "home"
    one_batch(tmp_path / "raw")
    config = workflow_config(tmp_path, results_dir="~/results")
    target = "~/results/manifests/videos.parquet"
    command = snakemake_command(tmp_path, config, str(home / "results/manifests/videos.parquet"))
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "HOME": str(home)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (home / "results/manifests/videos.parquet").exists() and not (tmp_path / "~").exists(), target


# ---------------------------------------------------------------- 2: missing and damaged outputs


def test_a_deleted_model_or_store_file_is_planned_for_rebuilding_by_a_plain_run(workdir):
    """The plan is what a plain `snakemake` runs (the damaged-store test below runs one to the end)."""
    config = workdir / "test-config.yaml"
    results = workdir / "results"
    (results / f"models/{MODEL}/model.keras").unlink()
    planned = planned_jobs(snakemake(workdir, config, "-n").stdout)
    assert planned == {"train": 1, "evaluate": 1, "scoring": 1, "report": 1, "all": 1}, planned
    (results / "store/0-0.mask.npy").unlink()
    planned = planned_jobs(snakemake(workdir, config, "-n").stdout)
    assert planned["pack"] == 1 and planned["train"] == 1, planned


def test_a_damaged_store_names_its_file_keeps_the_last_good_model_and_is_rebuilt_once_removed(workdir):
    config = workdir / "test-config.yaml"
    results = workdir / "results"
    model_dir = results / f"models/{MODEL}"
    trained_model = (model_dir / "model.keras").read_bytes()
    frames = results / "store/0-0.frames.npy"
    with open(frames, "r+b") as handle:
        handle.truncate(frames.stat().st_size // 2)  # a copy cut short
    done = snakemake(workdir, config, check=False)
    assert done.returncode != 0
    log = (results / f"logs/train/{MODEL}.log").read_text()
    assert f"{frames.relative_to(workdir)} cannot be read (" in log and "remove it and rerun `snakemake`" in log
    # Snakemake deleted the declared outputs when the retrain started; the last good ones stay
    assert not (model_dir / "model.keras").exists()
    assert (model_dir / "last_good/model.keras").read_bytes() == trained_model
    assert {path.name for path in (model_dir / "last_good").iterdir()} == set(TRAIN_FILES)

    frames.unlink()  # the fix the message names
    snakemake(workdir, config)
    assert frames.exists() and all((model_dir / name).exists() for name in TRAIN_FILES)
    assert (results / f"eval/{MODEL}/metrics.json").exists() and nothing_to_do(workdir)
    assert os.path.samefile(model_dir / "model.keras", model_dir / "last_good/model.keras")


# ---------------------------------------------------------------- 4: a killed Snakemake whose job lives on


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def reader_waits(fifo: Path) -> int | None:
    """The write end of ``fifo`` once a process waits on its read end (the held job), else None."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_snakemake_whose_train_job_lives_on_is_not_taken_over(workdir):
    results = workdir / "results"
    config = small_config(workdir, "retrain.yaml", learning_rate=0.002)  # a changed setting: train reruns
    fifo = workdir / "hold"
    os.mkfifo(fifo)
    log = open(workdir / "first-run.log", "w")  # not a pipe: the orphan keeps its end open
    env = {**os.environ, FAULT_ENV: "0:epoch_end", HOLD_ENV: str(fifo)}
    first = subprocess.Popen(snakemake_command(workdir, config), cwd=workdir, stdout=log, stderr=log, env=env)
    writer: list[int] = []
    wait_for(lambda: writer.append(reader_waits(fifo)) or writer[-1] is not None or first.poll() is not None, "hold")
    assert first.poll() is None, (workdir / "first-run.log").read_text()[-3000:]
    os.kill(first.pid, signal.SIGKILL)  # the main process only: its train job goes on (held at the FIFO)
    first.wait()
    log.close()
    (job,) = [json.loads(path.read_text()) for path in (results / JOBS_DIR).rglob("*.lock")]
    assert job["job"].endswith(f"logs/train/{MODEL}.log") and alive(job["pid"]) and job["pid"] != first.pid
    assert read_holder(results)["pid"] == first.pid  # the dead run's lock

    train_log = results / f"logs/train/{MODEL}.log"
    held_log = train_log.read_text()
    assert held_log.count("training on") == 1

    snakemake(workdir, config, "--unlock")  # Snakemake's own lock, as its LockException says
    again = snakemake(workdir, config, check=False)
    assert again.returncode != 0
    output = again.stdout + again.stderr
    assert f"(PID {first.pid} on host" in output and "1 of its job(s) still run and write there" in output
    assert f"kill {job['pid']}" in output
    unlock = [sys.executable, "-m", "dfdetect.cli", "unlock", "--results-dir", str(results)]
    refused = subprocess.run(unlock, capture_output=True, text=True)
    assert refused.returncode == 1 and "still run" in refused.stderr and (results / LOCK_NAME).exists()
    assert train_log.read_text() == held_log  # no second trainer was started

    os.close(writer[-1])  # the orphan goes on and finishes its training: the model folder's only writer
    wait_for(lambda: not alive(job["pid"]), "the orphaned train job to end")
    model_dir = results / f"models/{MODEL}"
    assert all((model_dir / name).exists() for name in TRAIN_FILES) and not (model_dir / ".resume").exists()
    assert ": best epoch 1 of 1" in train_log.read_text() and "Traceback" not in train_log.read_text()

    snakemake(workdir, config)  # the dead run's lock is taken over now; Snakemake redoes its incomplete job
    assert all((model_dir / name).exists() for name in TRAIN_FILES)
    assert json.loads((model_dir / "train.json").read_text())["settings"]["learning_rate"] == 0.002
    assert "Traceback" not in train_log.read_text() and not (results / LOCK_NAME).exists()
    assert planned_jobs(snakemake(workdir, config, "-n").stdout) == {}


# ---------------------------------------------------------------- 6: temporaries of a killed writer


def test_the_temporary_of_a_writer_killed_mid_write_is_removed_by_the_next_run(tmp_path):
    one_batch(tmp_path / "raw")
    config = workflow_config(tmp_path, image_size=16, frames={"min": 20, "max": 100, "step": 10, "count": 4})
    store = tmp_path / "results/store"
    target = "results/store/0-0.frames.npy"
    killed = subprocess.run(
        snakemake_command(tmp_path, config, target),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, FAULT_ENV: "commit:0-0.frames.npy"},  # pack dies with its frames written, not renamed
    )
    assert killed.returncode != 0 and "Error in rule pack" in killed.stdout + killed.stderr
    (left,) = [path for path in store.iterdir() if path.name.startswith(".")]
    assert is_temporary(left.name) and left.name.startswith(".0-0.frames.npy.") and left.stat().st_size > 0
    done = snakemake(tmp_path, config, target)
    assert "removed 1 temporary file(s) left by killed jobs" in done.stderr
    assert (store / "0-0.frames.npy").exists()
    hidden = [path for path in (tmp_path / "results").rglob(".*") if path.is_file()]
    assert hidden == []
