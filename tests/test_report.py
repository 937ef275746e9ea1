"""Model comparison report: every configured model listed, sorted by log loss, missing ones explained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.clean import clean_summary
from dfdetect.data.splits import split_summary
from dfdetect.evaluation.comparison import COMPARISON_COLUMNS, comparison_table, model_row, run_table
from dfdetect.evaluation.metrics import evaluation_metrics
from dfdetect.evaluation.report import write_report
from dfdetect.layout import ResultsLayout, model_result_files

MODELS = {
    "cnn": {"arch": "cnn", "frames_per_video": "all", "epochs": 8},
    "xception": {"arch": "transfer", "backbone": "Xception", "frames_per_video": "middle"},
    "lstm": {"arch": "td_lstm", "backbone": "cnn", "frames_per_video": "all"},
    "never_trained": {"arch": "cnn", "frames_per_video": "all"},
    "never_evaluated": {"arch": "transfer", "backbone": "VGG16", "frames_per_video": "middle"},
}

ONE_CNN = {"cnn": {"arch": "cnn"}}


def metrics_for(log_loss: float, roc_auc: float) -> dict:
    at = {"precision": 0.9, "recall": 0.8, "specificity": 0.7}
    return {
        "n": 40,
        "n_real": 8,
        "n_fake": 32,
        "roc_auc": roc_auc,
        "roc_auc_ci": [roc_auc - 0.06, roc_auc + 0.05],
        "average_precision": 0.95,
        "log_loss": log_loss,
        "at_0.5": at,
        "at_validation_threshold": {"threshold": 0.62, **at, "recall": 0.6},
    }


def write_json(path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)


@pytest.fixture()
def results(tmp_path):
    eval_dir, models_dir = tmp_path / "eval", tmp_path / "models"
    write_json(eval_dir / "cnn" / "metrics.json", metrics_for(0.45, 0.81))
    write_json(
        models_dir / "cnn" / "train.json",
        {
            "epochs_run": 8,
            "best_epoch": 6,
            "wall_time_s": 120.4,
            "backend": "tensorflow",
            "selection": {"mode": "self_blended", "validation": "self_blended"},
        },
    )
    write_json(eval_dir / "xception" / "metrics.json", metrics_for(0.30, 0.91))
    write_json(models_dir / "xception" / "train.json", {"epochs_run": 5})  # older train.json: keys missing
    write_json(eval_dir / "lstm" / "metrics.json", "{not json")
    write_json(models_dir / "lstm" / "train.json", {"epochs_run": 3})
    write_json(models_dir / "never_evaluated" / "train.json", {"epochs_run": 2, "wall_time_s": 10})
    write_json(eval_dir / "removed_from_config" / "metrics.json", metrics_for(0.01, 0.99))
    return model_result_files(MODELS, ResultsLayout(tmp_path))


def cleaning_summaries() -> tuple[dict, dict]:
    cleaned = pd.DataFrame(
        {
            "video_id": list("abcdefgh"),
            "label": [0, 1, 1, 0, 1, 1, 1, 0],
            "family": ["a", "a", "a", "d", "d", "f", "g", "h"],
            "keep": [True, True, True, True, True, False, False, False],
            "drop_reason": [None] * 5 + ["too_few_frames", "original_dropped", "too_many_frames"],
        }
    )
    kept = cleaned[cleaned["keep"]]
    sets = {"train": kept.iloc[:3], "validation": kept.iloc[3:4], "test": kept.iloc[4:]}
    return clean_summary(cleaned), split_summary(sets, seed=2006)


def test_every_configured_model_is_listed_sorted_by_log_loss(results):
    table, missing = comparison_table(MODELS, results)
    assert list(table.columns) == COMPARISON_COLUMNS
    assert sorted(table["model"]) == sorted(MODELS)  # and nothing that is not configured
    assert list(table["model"][:2]) == ["xception", "cnn"]  # lower log loss first
    assert table["log_loss"][2:].isna().all()  # models without metrics come last
    best = table.iloc[0]
    assert (best["arch"], best["backbone"], best["frames"], best["epochs_run"]) == ("transfer", "Xception", "middle", 5)
    assert (best["roc_auc_ci_low"], best["roc_auc_ci_high"]) == pytest.approx((0.85, 0.96))
    assert best["recall_at_0.5"] == 0.8 and best["recall_at_val"] == 0.6 and best["val_threshold"] == 0.62
    assert pd.isna(best["train_time_s"]) and pd.isna(best["best_epoch"])


def test_missing_models_are_reported_with_a_reason(results):
    _, missing = comparison_table(MODELS, results)
    reasons = dict(entry.split(": ", 1) for entry in missing)
    assert set(reasons) == {"lstm", "never_trained", "never_evaluated"}
    assert "training or evaluation did not finish" in reasons["never_trained"]
    assert "evaluation did not finish" in reasons["never_evaluated"]
    assert "unreadable" in reasons["lstm"]


def test_model_row_tolerates_absent_settings_metrics_and_train_info():
    row = model_row("bare", {}, None, None)
    assert list(row) == COMPARISON_COLUMNS
    assert row["model"] == "bare" and all(value is None for key, value in row.items() if key != "model")


def test_report_files_hold_table_best_model_missing_and_cleaning_summary(results, tmp_path):
    table, missing = comparison_table(MODELS, results)
    cleaned, splits = cleaning_summaries()
    csv_path, md_path = tmp_path / "report" / "comparison.csv", tmp_path / "report" / "comparison.md"
    write_report(table, missing, cleaned, splits, csv_path, md_path, model_files=results.model_files)
    from_csv = pd.read_csv(csv_path)
    assert list(from_csv["model"]) == list(table["model"])
    assert from_csv.loc[0, "epochs_run"] == 5
    markdown = md_path.read_text()
    assert "0.910 [0.850, 0.960]" in markdown
    assert "Best by mean test log loss: **xception**" in markdown
    deploy = f"The model to deploy: `{results.model_files['xception']}`"
    assert deploy in markdown and "models/xception/model.keras" in deploy
    assert f"dfdetect predict --model {results.model_files['xception']} INPUT..." in markdown
    for entry in missing:
        assert f"- {entry}" in markdown
    for name in MODELS:
        assert f"| {name} |" in markdown
    assert "removed_from_config" not in markdown
    # the main table first (what a run prints at its end), then the models and their thresholds
    assert "| xception | middle | 0.910 ± – (1) | 0.300 ± – (1) | – |" in markdown  # one run: no spread
    assert "| xception | transfer | Xception | 1 | 5 | – | 0.910 [0.850, 0.960] | 0.950 |" in markdown
    assert "| cnn | cnn | – | 1 | 8 | self-blended val. loss, epoch 6 | 0.810 [0.750, 0.860] |" in markdown
    assert "| xception | 0.620 (validation) | 0.900 | 0.600 | 0.700 |" in markdown
    assert max(line.count("|") - 1 for line in markdown.splitlines()) <= 8  # no table wider than 8 columns
    assert "<NA>" not in markdown and "nan" not in markdown
    # cleaning: 8 videos before, 5 after; one drop per reason; the split table
    assert "| before | 8 | 3 | 5 | 62.5% | 5 |" in markdown
    assert "| after | 5 | 2 | 3 | 60.0% | 2 |" in markdown
    for reason in ("too_few_frames", "too_many_frames", "original_dropped"):
        assert f"| {reason} | 1 |" in markdown
    assert "| train | 3 | 1 | 2 | 66.7% | 1 | 0.600 |" in markdown
    assert "seed 2006" in markdown


def test_report_without_any_metrics_still_writes(tmp_path):
    table, missing = comparison_table(ONE_CNN, model_result_files(ONE_CNN, ResultsLayout(tmp_path)))
    cleaned, splits = cleaning_summaries()
    write_report(table, missing, cleaned, splits, tmp_path / "c.csv", tmp_path / "c.md")
    assert "No model has metrics yet." in (tmp_path / "c.md").read_text()
    assert len(pd.read_csv(tmp_path / "c.csv")) == 1


def test_report_reads_what_evaluation_metrics_writes(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 10)
    table = pd.DataFrame(
        {
            "label": labels,
            "family": np.repeat([f"f{i}" for i in range(10)], 2),
            "p_fake": np.clip(0.3 + 0.4 * labels + rng.normal(0, 0.2, 20), 0, 1),
        }
    )
    metrics = evaluation_metrics(table, table, n_resamples=30)
    write_json(tmp_path / "eval" / "cnn" / "metrics.json", metrics)
    comparison, missing = comparison_table(ONE_CNN, model_result_files(ONE_CNN, ResultsLayout(tmp_path)))
    row = comparison.iloc[0]
    assert row["roc_auc"] == metrics["roc_auc"] and row["log_loss"] == metrics["log_loss"]
    assert row["roc_auc_ci_low"] == metrics["roc_auc_ci"][0]
    assert row["specificity_at_val"] == metrics["at_validation_threshold"]["specificity"]
    assert row["val_threshold"] == metrics["at_validation_threshold"]["threshold"]
    assert missing == []


def test_report_pages_render_the_tables_roc_figure_and_configuration(results, tmp_path):
    from dfdetect.evaluation.report import ReportPaths, write_report_pages
    from dfdetect.evaluation.run_summary import run_summary

    rng = np.random.default_rng(1)
    for name in ("cnn", "xception"):  # the test predictions the ROC figure overlays
        labels = np.array([0, 1] * 6)
        scores = np.clip(0.5 * labels + rng.uniform(0, 0.6, 12), 0, 1)
        pd.DataFrame({"label": labels, "p_fake": scores}).to_parquet(results.predictions[name])
    table, missing = comparison_table(MODELS, results)
    cleaned, splits = cleaning_summaries()
    videos = pd.DataFrame({"video_id": ["a"], "has_folder": [True]})
    kept = pd.DataFrame({"video_id": ["a"], "keep": [True], "drop_reason": [None]})
    index = pd.DataFrame({"video_id": ["a"], "status": ["ok"]})
    skipped = pd.DataFrame({"reason": pd.Series([], dtype=str)})
    summary = run_summary(videos, kept, [index], [skipped])
    paths = ReportPaths.in_folder(tmp_path / "report")
    config = {"image_size": 64, "models": {"cnn": {"arch": "cnn"}}}
    write_report_pages(paths, table, missing, results, cleaned, splits, summary, config)
    page = paths.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<table>") == 4  # main, calibration, models, thresholds
    assert "<td>xception</td>" in page and "<strong>xception</strong>" in page and "|" not in page.split("<body>")[1]
    assert "<td>0.910 [0.850, 0.960]</td>" in page and "<td>0.910 ± – (1)</td>" in page
    assert "Data cleaning" not in page and "Data cleaning" in paths.summary_html.read_text()
    assert "image_size: 64" in paths.config.read_text() and "<pre>" in paths.config.read_text()
    assert paths.roc.read_bytes().startswith(b"\x89PNG")
    assert paths.markdown.read_text().startswith("# dfdetect model comparison")
    assert paths.summary.read_text().startswith("# dfdetect run summary")


def test_roc_panels_take_whatever_predictions_exist(results):
    from dfdetect.evaluation.report import roc_panels

    pd.DataFrame({"label": [0, 1], "p_fake": [0.2, 0.7]}).to_parquet(results.predictions["cnn"])
    panels = roc_panels(results)
    assert list(panels) == ["test split"] and list(panels["test split"]) == ["cnn"]  # the others have none
    labels, scores = panels["test split"]["cnn"]
    assert list(labels) == [0, 1] and list(scores) == [0.2, 0.7]


def test_roc_comparison_draws_each_dataset_and_names_one_class_scorers(tmp_path):
    from dfdetect.evaluation.plots import plot_roc_comparison

    both, one_class = ([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.6]), ([1, 1], [0.5, 0.7])
    plot_roc_comparison({"test split": {"a": both, "b": both}, "set s": {"a": one_class}}, tmp_path / "r.png", "t")
    plot_roc_comparison({}, tmp_path / "empty.png", "t")  # no predictions yet: a picture that says so
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in ("r.png", "empty.png"))


# ---------------------------------------------------------------- runs, spread, calibration, ensembles

RUNS = {
    "cnn": {"arch": "cnn", "repeats": 3},
    "sbi": {"arch": "cnn", "fakes": "sbi", "repeats": 3},
    "lstm": {"arch": "td_lstm", "backbone": "cnn"},
}


def calibrated_metrics_for(log_loss: float, roc_auc: float, calibrated: float) -> dict:
    return metrics_for(log_loss, roc_auc) | {
        "ece": 0.2,
        "calibrated": {"method": "temperature", "calibration": "temperature T=2", "log_loss": calibrated, "ece": 0.05},
        "validation": {"n": 20, "log_loss": 0.5, "log_loss_calibrated": 0.4, "ece": 0.3, "ece_calibrated": 0.1},
    }


@pytest.fixture()
def run_results(tmp_path):
    layout = ResultsLayout(tmp_path)
    aucs = {"cnn": [0.95, 0.97, 0.99], "sbi": [0.70, 0.80, 0.90], "lstm": [0.96]}
    for name, values in aucs.items():
        for run, auc in enumerate(values):
            part = layout.run_part(run)
            write_json(Path(layout.eval_file(name, "metrics", part)), calibrated_metrics_for(1 - auc, auc, 0.9 - auc))
            write_json(
                Path(layout.set_eval_file(name, "unseen", "metrics", part)), calibrated_metrics_for(0.6, auc - 0.2, 0.5)
            )
            write_json(
                Path(layout.train_file(name, "info", part)), {"seed": 42 + run, "best_epoch": 2, "epochs_run": 3}
            )
    for run, auc in enumerate([0.98, 0.96, 0.97]):
        part = layout.run_part(run)
        write_json(Path(layout.eval_file("duo", "metrics", part)), calibrated_metrics_for(0.1, auc, 0.08))
        write_json(Path(layout.set_eval_file("duo", "unseen", "metrics", part)), calibrated_metrics_for(0.5, 0.8, 0.4))
    return aucs, model_result_files(RUNS, layout, ["unseen"], ensembles={"duo": 3})


def test_spread_is_the_mean_and_sample_standard_deviation_of_the_runs(run_results):
    aucs, files = run_results
    ensembles = {"duo": {"members": ["cnn", "sbi"], "combine": "mean"}}
    table, missing = comparison_table(RUNS, files, ensembles)
    assert missing == []
    rows = table.set_index("model")
    for name, values in aucs.items():
        assert rows.loc[name, "n_runs"] == len(values)
        assert rows.loc[name, "roc_auc_mean"] == pytest.approx(np.mean(values))
        assert rows.loc[name, "roc_auc"] == values[0]  # run 0, the model to deploy
        if len(values) > 1:
            assert rows.loc[name, "roc_auc_sd"] == pytest.approx(np.std(values, ddof=1))
        else:
            assert pd.isna(rows.loc[name, "roc_auc_sd"])  # no spread from one run
        calibrated = [0.9 - auc for auc in values]
        assert rows.loc[name, "log_loss_calibrated_mean"] == pytest.approx(np.mean(calibrated))
        assert rows.loc[name, "unseen_roc_auc_mean"] == pytest.approx(np.mean(values) - 0.2)
    assert rows.loc["sbi", "roc_auc_sd"] == pytest.approx(np.std([0.7, 0.8, 0.9], ddof=1))
    assert (rows.loc["duo", "arch"], rows.loc["duo", "backbone"], rows.loc["duo", "n_runs"]) == (
        "ensemble",
        "cnn+sbi",
        3,
    )
    assert rows.loc["cnn", "val_log_loss_calibrated"] == 0.4 and rows.loc["cnn", "calibration"] == "temperature T=2"
    runs = run_table(files)
    assert len(runs) == 10 and list(runs.loc[runs["model"] == "cnn", "seed"]) == [42, 43, 44]
    assert list(runs.loc[runs["model"] == "sbi", "roc_auc"]) == aucs["sbi"]


def test_the_spread_section_says_whether_a_difference_exceeds_the_spread(run_results, tmp_path):
    _, files = run_results
    table, missing = comparison_table(RUNS, files, {"duo": {"members": ["cnn", "sbi"]}})
    runs = run_table(files)
    write_report(
        table,
        missing,
        {},
        {},
        tmp_path / "c.csv",
        tmp_path / "c.md",
        runs=runs,
        runs_path=tmp_path / "r.csv",
        baseline="cnn",
    )
    markdown = (tmp_path / "c.md").read_text()
    spread = markdown.split("## Spread over runs")[1].split("## Calibration")[0]
    assert "| cnn | – | 0.970 ± 0.020 (3) |" in markdown  # the main table: mean ± sd (runs)
    # sbi: 0.800 ± 0.100 vs 0.970 ± 0.020, difference -0.170 > 0.120: beyond; duo: +0.000: within
    assert "- `sbi`: test ROC AUC -0.170 (0.800 ± 0.100 (3) vs 0.970 ± 0.020 (3)): beyond the spread" in spread
    assert "- `duo`: test ROC AUC +0.000 (0.970 ± 0.010 (3) vs 0.970 ± 0.020 (3)): within the spread" in spread
    assert "- `lstm`: test ROC AUC -0.010 (0.960 ± – (1) vs 0.970 ± 0.020 (3)): one run on a side" in spread
    assert "unseen ROC AUC" in spread
    assert "| cnn | temperature T=2 | 0.500 → 0.400 |" in markdown  # the calibration table
    assert "## Each run" in markdown and "| sbi | 2 | 44 | 2 | 0.900 |" in markdown
    assert len(pd.read_csv(tmp_path / "r.csv")) == 10


def test_a_missing_run_is_named(run_results, tmp_path):
    _, files = run_results
    Path(files.runs["sbi"][2].metrics).unlink()
    table, missing = comparison_table(RUNS, files)
    assert missing == ["sbi run 2: no metrics.json"]
    assert table.set_index("model").loc["sbi", "n_runs"] == 2
