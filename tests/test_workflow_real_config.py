"""A config given with --configfile replaces config.yaml (the demo) instead of merging over it:
a real-data config plans only the models and sets it names, never the demo's."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import ROOT, SNAKEFILE, snakemake, workflow_config

pytestmark = pytest.mark.workflow

REAL_CONFIG = ROOT / "config" / "real.yaml"
BATCHES = ("0-0", "1-0")


def checkout_like(workdir: Path) -> Path:
    """A working directory holding the demo's config.yaml, as a checkout does, and two real-format batches."""
    shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")
    raw = workdir / "raw"
    for number, batch in enumerate(BATCHES):
        write_face_batch(raw / f"deepfake-detection-faces-part-{batch}.zip", family_batch(f"v{number}", 2, 1, range(3)))
    return raw


def planned(done: subprocess.CompletedProcess) -> tuple[dict[str, int], str]:
    output = done.stdout + done.stderr
    return planned_jobs(output), output


def assert_nothing_of_the_demo(jobs: dict[str, int], output: str, models: set[str]) -> None:
    assert "demo" not in jobs and "evaluate_set" not in jobs and "set_videos" not in jobs
    assert planned_wildcards(output, "train", "model") == models
    assert planned_wildcards(output, "evaluate", "model") == models
    assert planned_wildcards(output, "ingest") == set(BATCHES)


def test_the_real_data_config_plans_no_demo_job_and_no_demo_model(tmp_path):
    raw = checkout_like(tmp_path)
    overrides = ["--config", f"raw_dir={raw}", "results_dir=results"]
    if importlib.util.find_spec("jax") is None:
        # the config names JAX: without it the run stops before any job, saying how to install it
        done = snakemake(tmp_path, REAL_CONFIG, "-n", *overrides, check=False)
        assert done.returncode != 0 and 'pip install -e ".[jax]"' in done.stdout + done.stderr
        overrides.append("keras_backend=tensorflow")
    jobs, output = planned(snakemake(tmp_path, REAL_CONFIG, "-n", *overrides))
    assert_nothing_of_the_demo(jobs, output, {"effnet_b4"})
    assert jobs["landmarks"] == len(BATCHES)  # the recommended recipe needs them


def test_a_users_config_runs_only_its_own_models(tmp_path):
    raw = checkout_like(tmp_path)
    mine = {"mine": {"arch": "cnn", "epochs": 1}}
    config = workflow_config(tmp_path, "my-config.yaml", raw_dir=str(raw), models=mine)
    jobs, output = planned(snakemake(tmp_path, config, "-n"))
    assert_nothing_of_the_demo(jobs, output, {"mine"})
    # without --configfile, config.yaml (the demo) is the config; --config changes single keys of it
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path), "-n"]
    done = subprocess.run([*command, "--config", "results_dir=demo-results"], capture_output=True, text=True)
    jobs, output = planned(done)
    assert jobs["demo"] > 0 and planned_wildcards(output, "train", "model") == set(
        yaml.safe_load((ROOT / "config.yaml").read_text())["models"]
    )
    assert "demo-results/" in output
