"""Measuring generalization through Snakemake: an evaluation set prepared by the same rules and
scored by every model, per-manipulation ROC AUC, robustness curves, and what adding a set reruns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dfdetect.layout import ResultsLayout
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import snakemake, workflow_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

DEMO = {
    "enabled": True,
    "batches": 2,
    "videos_per_batch": 16,
    "image_size": 24,
    "n_frame_slots": 60,
    "seed": 3,
    "manipulations": ["swap", "reenact"],
    "real_share": [0.4, 0.45],
}
UNSEEN = {
    "demo": {
        "batches": 1,
        "videos_per_batch": 14,
        "seed": 9,
        "manipulations": ["gan_upsample", "colour"],
        "real_share": [0.4, 0.45],
    }
}
MODELS = {
    "tiny": {
        "arch": "cnn",
        "frames_per_video": "all",
        "epochs": 1,
        "batch_size": 16,
        "resources": {"gpu": 0, "threads": 1, "mem_mb": 1000, "runtime": 10},
    }
}


def generalization_config(workdir, sets, name="test-config.yaml"):
    return workflow_config(
        workdir,
        name,
        demo=DEMO,
        image_size=24,
        frames={"min": 20, "max": 100, "step": 10, "count": 4},
        split={"test": 0.3, "validation": 0.3, "seed": 2},
        evaluation={"bootstrap": 20, "sets": sets},
        models=MODELS,
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf-generalization")
    config = generalization_config(workdir, {"unseen": UNSEEN})
    snakemake(workdir, config)
    return workdir, config, ResultsLayout(workdir / "results")


def test_the_set_is_prepared_apart_and_every_video_of_it_is_scored(evaluated):
    workdir, _, layout = evaluated
    set_videos = pd.read_parquet(layout.set_videos("unseen"))
    predictions = pd.read_parquet(layout.set_eval_file("tiny", "unseen", "predictions"))
    assert sorted(predictions["video_id"]) == sorted(set_videos["video_id"]) and len(predictions) >= 8
    assert set(set_videos["manipulation"].dropna()) - {""} <= {"gan_upsample", "colour"}
    # its own tables, never split: nothing of it in the training data's splits
    assert (workdir / "results/sets/unseen/manifests/videos.parquet").is_file()
    split_ids = set().union(
        *(set(pd.read_parquet(layout.split(name))["video_id"]) for name in ("train", "validation", "test"))
    )
    assert not split_ids & set(predictions["video_id"])  # a set's batch ids repeat the training data's; videos do not
    metrics = json.loads(open(layout.set_eval_file("tiny", "unseen", "metrics")).read())
    assert metrics["set"] == "unseen" and metrics["n"] == len(predictions)


def test_per_manipulation_auc_is_scikit_learns_on_that_subset(evaluated):
    _, _, layout = evaluated
    for predictions_path, metrics_path in (
        (layout.eval_file("tiny", "predictions"), layout.eval_file("tiny", "metrics")),
        (layout.set_eval_file("tiny", "unseen", "predictions"), layout.set_eval_file("tiny", "unseen", "metrics")),
    ):
        predictions = pd.read_parquet(predictions_path)
        per_kind = json.loads(open(metrics_path).read())["per_manipulation"]
        for kind, entry in per_kind.items():
            subset = predictions[(predictions["label"] == 0) | (predictions["manipulation"] == kind)]
            assert entry["roc_auc"] == pytest.approx(roc_auc_score(subset["label"], subset["p_fake"]))


def test_robustness_uses_the_evaluation_frames_and_covers_every_level(evaluated):
    _, _, layout = evaluated
    table = pd.read_csv(layout.robustness_file("tiny", "table"))
    assert list(table.columns) == ["perturbation", "level", "roc_auc", "log_loss", "n"]
    assert len(table) == 1 + 7 * 5 and set(table.loc[table["level"] > 0, "level"]) == {1, 2, 3, 4, 5}
    metrics = json.loads(open(layout.eval_file("tiny", "metrics")).read())
    clean = table[table["level"] == 0].iloc[0]
    assert clean["roc_auc"] == pytest.approx(metrics["roc_auc"]) and clean["log_loss"] == pytest.approx(
        metrics["log_loss"]
    )
    assert (table["n"] == metrics["n"]).all()
    assert open(layout.robustness_file("tiny", "plot"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_comparison_lists_test_unseen_manipulation_and_perturbed_auc(evaluated):
    _, _, layout = evaluated
    table = pd.read_csv(layout.report_file("comparison.csv"))
    row = table.iloc[0]
    metrics = json.loads(open(layout.set_eval_file("tiny", "unseen", "metrics")).read())
    assert row["unseen_roc_auc"] == pytest.approx(metrics["roc_auc"])
    assert row["unseen_auc_gap"] == pytest.approx(metrics["roc_auc"] - row["roc_auc"])
    robustness = pd.read_csv(layout.robustness_file("tiny", "table"))
    assert row["mean_perturbed_auc"] == pytest.approx(robustness.loc[robustness["level"] > 0, "roc_auc"].mean())
    assert {"auc_swap", "auc_reenact"} <= set(table.columns)
    assert {"unseen_auc_gan_upsample", "unseen_auc_colour"} <= set(table.columns)
    markdown = open(layout.report_file("comparison.md")).read()
    assert "## Generalization" in markdown and "unseen ROC AUC" in markdown and "mean perturbed ROC AUC" in markdown
    assert np.isfinite(row["mean_perturbed_auc"])


def test_adding_a_set_reruns_only_its_preparation_and_scoring(evaluated):
    workdir, _, _ = evaluated
    more = generalization_config(
        workdir, {"unseen": UNSEEN, "other": {"demo": {**UNSEEN["demo"], "seed": 11}}}, "more-sets.yaml"
    )
    output = snakemake(workdir, more, "-n").stdout
    jobs = planned_jobs(output)
    assert jobs.pop("report") == 1 and jobs.pop("all") == 1
    assert jobs == {
        "demo": 1,
        "ingest": 1,
        "manifest": 1,
        "clean": 1,
        "select_frames": 1,
        "pack": 1,
        "set_videos": 1,
        "evaluate_set": 1,
    }
    assert planned_wildcards(output, "evaluate_set", "set") == {"other"}
    assert planned_wildcards(output, "ingest", "data") == {"sets/other/"}


def test_a_bad_set_fails_before_any_job_naming_the_key(evaluated, tmp_path):
    workdir, _, _ = evaluated
    config = generalization_config(workdir, {"broken": {"raw_dir": str(tmp_path / "absent")}}, "bad-set.yaml")
    done = snakemake(workdir, config, "-n", check=False)
    assert done.returncode != 0 and "config key 'evaluation.sets.broken.raw_dir'" in done.stdout + done.stderr
