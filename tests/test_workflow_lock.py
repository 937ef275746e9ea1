"""The results_dir lock: two runs from two working directories on one results folder never interleave."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfdetect.lock import LOCK_NAME, acquire, read_holder, release
from dfdetect.testkit.batches import family_batch, write_face_batch
from tests.helpers.workflow import snakemake, snakemake_command, workflow_config

pytestmark = pytest.mark.workflow


def workdir_on(results: Path, workdir: Path, zip_batch: bool = True) -> Path:
    """A working directory whose config writes to the shared ``results``."""
    raw = workdir / "raw"
    raw.mkdir(parents=True)
    if zip_batch:
        write_face_batch(raw / "deepfake-detection-faces-part-0-0.zip", family_batch("a", 1, 1, range(3)))
    return workflow_config(workdir, raw_dir=str(raw), results_dir=str(results))


def test_a_run_on_a_locked_results_dir_stops_before_any_job(tmp_path):
    results = tmp_path / "shared-results"
    config_b = workdir_on(results, tmp_path / "b")
    target = str(results / "manifests/videos.parquet")
    acquire(results)  # "another run": this process, alive, on this host
    try:
        done = snakemake(tmp_path / "b", config_b, target, check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0
        assert f"is in use by another run (PID {os.getpid()} on host {socket.gethostname()}" in output, output
        assert "dfdetect unlock --results-dir" in output
        assert not (results / "manifests").exists()  # nothing written, nothing deleted
    finally:
        release(results)
    snakemake(tmp_path / "b", config_b, target)  # free again: the run's own jobs are not blocked by its lock
    assert (results / "manifests/videos.parquet").exists()
    assert not (results / LOCK_NAME).exists()  # released at the end of the run


def test_two_snakemake_runs_from_two_working_directories_do_not_interleave(tmp_path):
    results = tmp_path / "shared-results"
    config_a = workdir_on(results, tmp_path / "a", zip_batch=False)
    fifo = tmp_path / "a/raw/deepfake-detection-faces-part-0-0.zip"
    os.mkfifo(fifo)  # run A's ingest blocks opening it until this test lets it go: A holds the lock meanwhile
    config_b = workdir_on(results, tmp_path / "b")
    command_a = snakemake_command(tmp_path / "a", config_a, str(results / "manifests/videos.parquet"), "--cores", "1")
    run_a = subprocess.Popen(command_a, cwd=tmp_path / "a", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while read_holder(results) is None:
            assert run_a.poll() is None, run_a.stdout.read()
            assert time.monotonic() < deadline, "run A never took the lock"
            time.sleep(0.1)
        assert read_holder(results)["pid"] == run_a.pid
        done = snakemake(tmp_path / "b", config_b, str(results / "manifests/videos.parquet"), check=False)
        assert done.returncode != 0
        assert f"is in use by another run (PID {run_a.pid} on host" in done.stdout + done.stderr
        assert run_a.poll() is None  # A goes on, untouched
    finally:
        with open(fifo, "wb"):  # lets A's ingest go on (it then fails: the pipe holds no zip)
            pass
        output_a, _ = run_a.communicate(timeout=120)
    assert run_a.returncode != 0 and "not a readable zip file" in output_a
    assert read_holder(results) is None  # A released the lock in its onerror handler
    snakemake(tmp_path / "b", config_b, str(results / "manifests/videos.parquet"))


def test_stale_lock_of_a_dead_run_is_taken_over_and_a_remote_one_needs_unlock(tmp_path):
    results = tmp_path / "shared-results"
    results.mkdir()
    config_b = workdir_on(results, tmp_path / "b")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (results / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "workdir": "/x"}))
    done = snakemake(tmp_path / "b", config_b, str(results / "manifests/videos.parquet"))
    assert "taking over the lock" in done.stdout + done.stderr
    assert not (results / LOCK_NAME).exists()

    (results / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "workdir": "/x"}))
    done = snakemake(tmp_path / "b", config_b, str(results / "clean/videos.parquet"), check=False)
    assert done.returncode != 0 and "PID 1 on host elsewhere.example" in done.stdout + done.stderr
    unlocked = subprocess.run(
        [sys.executable, "-m", "dfdetect.cli", "unlock", "--results-dir", str(results)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "removed the lock" in unlocked.stdout and "snakemake --unlock" in unlocked.stdout
    snakemake(tmp_path / "b", config_b, str(results / "clean/videos.parquet"))
