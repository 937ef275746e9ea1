"""Training, evaluation and reports through Snakemake on small crafted batches."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import snakemake, tiny_models_config

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
    snakemake(workdir, config)
    return workdir, config


def test_whole_pipeline_outputs(trained):
    workdir, _ = trained
    results = workdir / "results"
    for model in TINY_MODELS:
        assert (results / f"models/{model}/model.keras").exists()
        info = json.loads((results / f"models/{model}/train.json").read_text())
        assert info["epochs_run"] == 1
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
    comparison = pd.read_csv(results / "report/comparison.csv")
    assert sorted(comparison["model"]) == sorted(TINY_MODELS)
    markdown = (results / "report/comparison.md").read_text()
    assert "too_few_frames" in markdown and "All configured models have metrics" in markdown


def test_nothing_to_do_then_rerun_one_rule(trained):
    workdir, config = trained
    assert planned_jobs(snakemake(workdir, config, "-n").stdout) == {}
    output = snakemake(workdir, config, "-n", "-R", "train").stdout
    assert planned_jobs(output) == {"train": 2, "evaluate": 2, "report": 1, "all": 1}


def test_changed_model_setting_retrains_only_that_model(trained):
    workdir, _ = trained
    changed = dict(TINY_MODELS, small_cnn=dict(TINY_MODELS["small_cnn"], learning_rate=0.01))
    output = snakemake(workdir, tiny_models_config(workdir, changed, "changed-lr.yaml"), "-n").stdout
    assert planned_wildcards(output, "train", "model") == {"small_cnn"}
    assert planned_wildcards(output, "evaluate", "model") == {"small_cnn"}
    assert set(planned_jobs(output)) == {"train", "evaluate", "report", "all"}


@pytest.mark.parametrize(
    "speed",
    [{"resources": {"threads": 1, "mem_mb": 500, "gpu": 0}}, {"loader_workers": 2}],
    ids=["resources", "workers"],
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
        "n_frames_hist.png",
        "history.png",
        "training_samples.png",
    ):
        assert expected in html


def test_failed_and_removed_models_are_reported_not_crashing(trained):
    workdir, _ = trained
    models = {
        "small_cnn": TINY_MODELS["small_cnn"],  # small_lstm removed from the config
        "broken": {"arch": "transfer", "backbone": "NoSuchNet", "weights": None, "epochs": 1},
    }
    config = tiny_models_config(workdir, models, "with-broken.yaml")
    done = snakemake(workdir, config, "--keep-going", check=False)
    assert done.returncode != 0
    assert "NoSuchNet" in (workdir / "results/logs/train/broken.log").read_text()
    command = [sys.executable, "-m", "dfdetect.cli", "report", "--config", str(config)]
    printed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=True).stdout
    assert "missing: broken" in printed
    comparison = pd.read_csv(workdir / "results/report/comparison.csv")
    assert comparison["model"].tolist() == ["small_cnn", "broken"]  # the removed model is not listed
    assert "broken" in (workdir / "results/report/comparison.md").read_text().split("## Missing models")[1]
