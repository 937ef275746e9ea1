"""Training, evaluation and reports through Snakemake on small crafted batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from dfdetect.training.resume import FAULT_ENV
from tests.helpers.workflow import ROOT, snakemake, snakemake_command, tiny_models_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

TINY_MODELS = {
    "small_cnn": {"arch": "cnn", "frames_per_video": "all", "epochs": 1, "batch_size": 16},
    "small_lstm": {"arch": "td_lstm", "backbone": "cnn", "epochs": 1, "batch_size": 4},
}


def batch_videos(prefix: str) -> list[Video]:
    videos = []
    for family in range(4):
        real = f"{prefix}r{family}"
        videos.append(Video(real, "REAL", None, range(0, 40)))
        videos += [Video(f"{prefix}f{family}{k}", "FAKE", real, range(0, 40)) for k in range(2)]
    return videos


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf-models")
    for number, batch in enumerate(("0-0", "0-1", "1-0")):
        write_face_batch(
            workdir / "raw" / f"deepfake-detection-faces-part-{batch}.zip", batch_videos(f"b{number}"), size=16
        )
    config = tiny_models_config(workdir, TINY_MODELS)
    done = snakemake(workdir, config)
    (workdir / "console.txt").write_text(done.stdout + done.stderr)  # what a local run shows
    return workdir, config


def test_whole_pipeline_outputs(trained):
    workdir, _ = trained
    results = workdir / "results"
    for model in TINY_MODELS:
        assert (results / f"models/{model}/model.keras").exists()
        info = json.loads((results / f"models/{model}/train.json").read_text())
        assert info["epochs_run"] == 1
        assert info["first_epoch_s"] > 0 and info["steady_images_per_s"] is None  # one epoch: no steady one
        # the loader's workers: the job's threads (resources.threads 2, run with --cores 2)
        assert info["loader"]["workers"] == min(2, len(os.sched_getaffinity(0)))
        metrics = json.loads((results / f"eval/{model}/metrics.json").read_text())
        test = pd.read_parquet(results / "splits/test.parquet")
        assert metrics["n"] == len(test)
        predictions = pd.read_parquet(results / f"eval/{model}/predictions.parquet")
        assert sorted(predictions["video_id"]) == sorted(test["video_id"])
        assert predictions["p_fake"].between(0, 1).all()
        submission = pd.read_csv(results / f"eval/{model}/submission.csv")
        assert list(submission.columns) == ["filename", "label"] and submission["filename"].str.endswith(".mp4").all()
        for plot in ("roc.png", "precision_recall.png", "confusion_matrix.png", "score_histograms.png"):
            assert (results / f"eval/{model}/{plot}").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "epoch 1/1" in (results / f"logs/train/{model}.log").read_text()
        assert f"dfdetect {model} epoch 1/1: " in (workdir / "console.txt").read_text()  # training is visible
        assert list((results / f"models/{model}/tensorboard/train").glob("events.out.tfevents.*"))
    assert "Shell command: None" not in (workdir / "console.txt").read_text()
    comparison = pd.read_csv(results / "report/comparison.csv")
    assert sorted(comparison["model"]) == sorted(TINY_MODELS)
    markdown = (results / "report/comparison.md").read_text()
    assert "too_few_frames" in markdown and "All configured models have metrics" in markdown


def test_nothing_to_do_then_rerun_one_rule(trained):
    workdir, config = trained
    assert planned_jobs(snakemake(workdir, config, "-n").stdout) == {}
    output = snakemake(workdir, config, "-n", "-R", "train").stdout
    assert planned_jobs(output) == {"train": 2, "evaluate": 2, "scoring": 2, "report": 1, "all": 1}


def test_retraining_one_model_by_its_file_updates_its_evaluation_and_the_comparison(trained):
    workdir, config = trained
    output = snakemake(workdir, config, "-n", "--forcerun", "results/models/small_cnn/model.keras").stdout
    assert planned_jobs(output) == {"train": 1, "evaluate": 1, "scoring": 1, "report": 1, "all": 1}
    assert (
        planned_wildcards(output, "train", "model") == planned_wildcards(output, "evaluate", "model") == {"small_cnn"}
    )


def test_predict_without_a_config_scores_the_test_split_as_evaluation_did(trained, tmp_path):
    """The frames (step 10, count 4), the image size and the aggregation differ from the schema's
    defaults: the model's scoring.json carries them."""
    workdir, _ = trained
    test_videos = set(pd.read_parquet(workdir / "results/splits/test.parquet")["video_id"])
    for model in TINY_MODELS:
        scoring = json.loads((workdir / f"results/models/{model}/scoring.json").read_text())
        assert scoring["frames"] == {"step": 10, "count": 4} and scoring["image_size"] == 16
        out = tmp_path / f"{model}.csv"
        command = [sys.executable, "-m", "dfdetect.cli", "predict", "--model", f"results/models/{model}/model.keras"]
        command += [*map(str, sorted((workdir / "raw").glob("*.zip"))), "--out", str(out)]
        subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True)
        scored = pd.read_csv(out).assign(video_id=lambda table: table["filename"].str.removesuffix(".mp4"))
        scored = scored[scored["video_id"].isin(test_videos)].set_index("video_id")
        evaluated = pd.read_parquet(workdir / f"results/eval/{model}/predictions.parquet").set_index("video_id")
        assert sorted(scored.index) == sorted(evaluated.index) and (scored["status"] == "ok").all()
        # the model's calibration applies (calibration.json beside it): evaluation's calibrated score
        expected = evaluated["p_fake_calibrated"].round(6).to_dict()
        assert scored["label"].to_dict() == pytest.approx(expected, abs=2e-6)
        assert scored["n_frames_scored"].to_dict() == evaluated["n_frames_scored"].to_dict()


def test_changed_model_setting_retrains_only_that_model(trained):
    workdir, _ = trained
    changed = dict(TINY_MODELS, small_cnn=dict(TINY_MODELS["small_cnn"], learning_rate=0.01))
    output = snakemake(workdir, tiny_models_config(workdir, changed, "changed-lr.yaml"), "-n").stdout
    assert planned_wildcards(output, "train", "model") == {"small_cnn"}
    assert planned_wildcards(output, "evaluate", "model") == {"small_cnn"}
    assert set(planned_jobs(output)) == {"train", "evaluate", "scoring", "report", "all"}


@pytest.mark.parametrize(
    "speed",
    [{"resources": {"threads": 1, "mem_mb": 500, "gpu": 0}}, {"loader_workers": 2}, {"loader_threads": True}],
    ids=["resources", "workers", "threads"],
)
def test_changed_speed_setting_reruns_nothing(trained, speed):
    workdir, _ = trained
    changed = dict(TINY_MODELS, small_cnn=dict(TINY_MODELS["small_cnn"], **speed))
    output = snakemake(workdir, tiny_models_config(workdir, changed, "changed-speed.yaml"), "-n").stdout
    assert planned_jobs(output) == {}, output[-2000:]


def test_html_report(trained):
    workdir, config = trained
    snakemake(workdir, config, "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    for expected in (
        "small_cnn",
        "small_lstm",
        "comparison.csv",
        "comparison.html",  # the comparison rendered in the page
        "roc_comparison.png",  # every model's ROC curve on each dataset
        "config.html",
        "n_frames_hist.png",
        "history.png",
        "training_samples.png",
        "training history",  # items are labelled, not listed by path
    ):
        assert expected in html


def test_the_end_of_a_run_shows_how_the_models_did_and_what_to_do_next(trained):
    workdir, config = trained
    command = [sys.executable, "-m", "dfdetect.cli", "where", "--configfile", str(config)]
    printed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True).stdout
    assert "| model | frames | test ROC AUC | test log loss | calibrated log loss |" in printed
    assert "| small_cnn | all |" in printed and "| small_lstm | clip |" in printed
    assert "the model to deploy: results/models/small_" in printed
    assert f"make report CONFIG={config}" in printed and "dfdetect predict --model results/models/" in printed


def test_make_report_works_from_a_fresh_shell(trained):
    """No activated environment: the Makefile calls the venv's own snakemake."""
    workdir, config = trained
    fresh_shell = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir)}
    report = workdir / "fresh-report.html"
    make = ["make", "-C", str(ROOT), "report", f"CONFIG={config}", f"REPORT={report}", f"SNAKEMAKE_ARGS=-d {workdir}"]
    done = subprocess.run(make, capture_output=True, text=True, env=fresh_shell)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"wrote {report}" in done.stdout and "comparison.html" in report.read_text(errors="replace")


def test_failed_and_removed_models_are_reported_not_crashing(trained):
    workdir, _ = trained
    models = {
        "small_cnn": TINY_MODELS["small_cnn"],  # small_lstm removed from the config
        "broken": {"arch": "cnn", "epochs": 1, "batch_size": 16},  # its train job dies (the fault hook)
    }
    config = tiny_models_config(workdir, models, "with-broken.yaml")
    command = snakemake_command(workdir, config, "--keep-going")
    killed_after_its_epoch = {**os.environ, FAULT_ENV: "0:epoch_end"}  # only broken trains in this run
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=killed_after_its_epoch)
    assert done.returncode != 0
    assert "Error in rule train" in done.stdout + done.stderr and "model=broken" in done.stdout + done.stderr
    command = [sys.executable, "-m", "dfdetect.cli", "report", "--config", str(config)]
    printed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True).stdout
    assert "missing: broken" in printed
    comparison = pd.read_csv(workdir / "results/report/comparison.csv")
    assert comparison["model"].tolist() == ["small_cnn", "broken"]  # the removed model is not listed
    assert "broken" in (workdir / "results/report/comparison.md").read_text().split("## Missing models")[1]
