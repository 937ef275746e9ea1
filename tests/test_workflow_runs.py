"""Repeats, calibration and ensembles through Snakemake on small crafted batches: one job per run,
the spread in the comparison, calibration next to every model, ensembles scored from their members,
and `dfdetect predict` with two models equal to the ensemble's evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dfdetect.evaluation import predict
from dfdetect.evaluation.ensemble import combine_scores
from dfdetect.layout import ResultsLayout
from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import snakemake, workflow_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

TINY = {"arch": "cnn", "frames_per_video": "all", "epochs": 1, "batch_size": 16, "resources": {"threads": 1}}
MODELS = {"twice": {**TINY, "repeats": 2, "seed": 5}, "once": {**TINY, "learning_rate": 0.01}}
ENSEMBLES = {"duo": {"members": ["twice", "once"], "combine": "logit_mean"}}
FRAMES = {"min": 20, "max": 100, "step": 10, "count": 4}


def batch_videos(prefix: str) -> list:
    return family_batch(prefix, n_families=4, fakes_per_family=2, frames=range(0, 40))


def runs_config(workdir, models=MODELS, ensembles=ENSEMBLES, name="test-config.yaml"):
    return workflow_config(
        workdir,
        name,
        image_size=16,
        frames=FRAMES,
        split={"test": 0.25, "validation": 0.25, "seed": 5},
        evaluation={"bootstrap": 20, "robustness": False, "sets": {"other": {"raw_dir": "raw_other"}}},
        models=models,
        ensembles=ensembles,
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf-runs")
    for number, batch in enumerate(("0-0", "0-1", "1-0")):
        write_face_batch(
            workdir / "raw" / f"deepfake-detection-faces-part-{batch}.zip", batch_videos(f"b{number}"), size=16
        )
    write_face_batch(workdir / "raw_other" / "deepfake-detection-faces-part-0-0.zip", batch_videos("o"), size=16)
    config = runs_config(workdir)
    snakemake(workdir, config)
    return workdir, config, ResultsLayout(workdir / "results")


def read_json(path) -> dict:
    return json.loads(open(path).read())


def test_each_run_trains_with_its_own_seed_and_is_evaluated_everywhere(evaluated):
    _, _, layout = evaluated
    seeds = [read_json(layout.train_file("twice", "info", layout.run_part(run)))["seed"] for run in range(2)]
    assert seeds == [5, 6]
    assert read_json(layout.train_file("once", "info"))["seed"] == 42
    for run in range(2):
        part = layout.run_part(run)
        for path in (
            layout.calibration_file("twice", part),
            layout.eval_file("twice", "metrics", part),
            layout.set_eval_file("twice", "other", "metrics", part),
        ):
            assert open(path).read()
    assert not (layout.root / "models/once/runs").exists()


def test_the_comparison_has_the_spread_over_runs(evaluated):
    _, _, layout = evaluated
    table = pd.read_csv(layout.report_file("comparison.csv")).set_index("model")
    assert table.loc["twice", "n_runs"] == 2 and table.loc["once", "n_runs"] == 1
    per_run = [read_json(layout.eval_file("twice", "metrics", layout.run_part(run))) for run in range(2)]
    for metric, values in {
        "roc_auc": [metrics["roc_auc"] for metrics in per_run],
        "log_loss": [metrics["log_loss"] for metrics in per_run],
        "log_loss_calibrated": [metrics["calibrated"]["log_loss"] for metrics in per_run],
    }.items():
        assert table.loc["twice", f"{metric}_mean"] == pytest.approx(np.mean(values))
        assert table.loc["twice", f"{metric}_sd"] == pytest.approx(np.std(values, ddof=1))
    set_aucs = [
        read_json(layout.set_eval_file("twice", "other", "metrics", layout.run_part(r)))["roc_auc"] for r in range(2)
    ]
    assert table.loc["twice", "other_roc_auc_sd"] == pytest.approx(np.std(set_aucs, ddof=1))
    assert pd.isna(table.loc["once", "roc_auc_sd"])
    runs = pd.read_csv(layout.report_file("comparison_runs.csv"))
    assert list(runs.loc[runs["model"] == "twice", "seed"]) == [5, 6]
    markdown = open(layout.report_file("comparison.md")).read()
    assert "## Spread over runs" in markdown and "- `once`: test ROC AUC" in markdown  # baseline: the first model


def test_calibration_is_fitted_on_validation_and_never_worse_there(evaluated):
    _, _, layout = evaluated
    table = pd.read_csv(layout.report_file("comparison.csv")).set_index("model")
    models = ["twice", "once"]
    assert (table.loc[models, "val_log_loss_calibrated"] <= table.loc[models, "val_log_loss"] + 1e-12).all()
    assert table[["log_loss", "log_loss_calibrated", "ece", "ece_calibrated"]].notna().all().all()
    calibration = read_json(layout.calibration_file("once"))
    validation = pd.read_parquet(layout.eval_file("once", "validation_predictions"))
    assert calibration["fitted_on"]["n"] == len(validation) and calibration["method"] == "temperature"
    logits = np.log(validation["p_fake"].clip(1e-15, 1 - 1e-15) / (1 - validation["p_fake"].clip(1e-15, 1 - 1e-15)))
    expected = 1 / (1 + np.exp(-(calibration["slope"] * logits + calibration["intercept"])))
    assert validation["p_fake_calibrated"].to_numpy() == pytest.approx(expected.to_numpy())
    submission = pd.read_csv(layout.eval_file("once", "submission"))
    test = pd.read_parquet(layout.eval_file("once", "predictions"))
    assert submission["label"].to_numpy() == pytest.approx(test["p_fake_calibrated"].to_numpy(), abs=1e-6)


def test_the_ensemble_combines_its_members_and_is_compared_like_a_model(evaluated):
    _, _, layout = evaluated
    table = pd.read_csv(layout.report_file("comparison.csv")).set_index("model")
    assert (table.loc["duo", "arch"], table.loc["duo", "n_runs"]) == ("ensemble", 1)  # its member with fewest runs
    assert pd.notna(table.loc["duo", "roc_auc_ci_low"]) and pd.notna(table.loc["duo", "other_roc_auc"])
    test_path = lambda name: layout.eval_file(name, "predictions")  # noqa: E731
    set_path = lambda name: layout.set_eval_file(name, "other", "predictions")  # noqa: E731
    for path in (test_path, set_path):
        members = [pd.read_parquet(path(name)).set_index("video_id") for name in ("twice", "once")]
        ensemble = pd.read_parquet(path("duo")).set_index("video_id")
        for column in ("p_fake", "p_fake_calibrated"):
            expected = combine_scores([member.loc[ensemble.index, column] for member in members], "logit_mean")
            assert ensemble[column].to_numpy() == pytest.approx(expected)


def test_predict_with_two_models_equals_the_ensembles_evaluation(evaluated, tmp_path):
    workdir, config, layout = evaluated
    out = tmp_path / "scores.csv"
    models = ["--model", layout.train_file("twice", "model"), "--model", layout.train_file("once", "model")]
    raw = [str(path) for path in sorted((workdir / "raw").glob("*.zip"))]
    assert predict.main([*raw, *models, "--combine", "logit_mean", "--config", str(config), "--out", str(out)]) == 0
    scores = pd.read_csv(out, keep_default_na=False).set_index("filename")
    ensemble = pd.read_parquet(layout.eval_file("duo", "predictions"))
    for row in ensemble.itertuples(index=False):
        assert scores.loc[f"{row.video_id}.mp4", "label"] == pytest.approx(row.p_fake_calibrated, abs=2e-6)


def test_more_repeats_train_only_the_new_runs_and_fewer_rerun_nothing(evaluated):
    workdir, _, _ = evaluated
    more = runs_config(workdir, dict(MODELS, twice={**MODELS["twice"], "repeats": 3}), name="more.yaml")
    output = snakemake(workdir, more, "-n").stdout
    assert planned_wildcards(output, "train", "run") == {"/runs/2"}
    assert planned_jobs(output) == {"train": 1, "evaluate": 1, "scoring": 1, "evaluate_set": 1, "report": 1, "all": 1}
    fewer = runs_config(workdir, dict(MODELS, twice={**MODELS["twice"], "repeats": 1}), name="fewer.yaml")
    assert set(planned_jobs(snakemake(workdir, fewer, "-n").stdout)) <= {"report", "all"}


def test_a_bad_ensemble_fails_before_any_job_naming_the_key(evaluated):
    workdir, _, _ = evaluated
    bad = runs_config(workdir, ensembles={"duo": {"members": ["twice", "thrice"]}}, name="bad.yaml")
    done = snakemake(workdir, bad, "-n", check=False)
    assert done.returncode != 0 and "config key 'ensembles.duo.members'" in done.stdout + done.stderr
    assert "'thrice' is not a configured model" in done.stdout + done.stderr
