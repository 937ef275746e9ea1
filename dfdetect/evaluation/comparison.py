"""The model comparison's tables: one row per configured model and ensemble, and one per run.

Reads what the evaluate, ensemble and train jobs left on disk (``eval/{model}/metrics.json``,
``models/{model}/train.json``, the same under ``runs/R/`` for a model's other runs). A configured
model without metrics (training failed, evaluation did not run) still gets a row with empty metrics
and is named in the "missing" list with the reason. Folders of models that are no longer in the
config are ignored: the comparison describes the configured experiment, and a removed model's stale
results would otherwise look current. ``dfdetect.evaluation.report`` writes these tables as the
comparison's files and pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from dfdetect.evaluation.ensemble import ENSEMBLE_ARCH
from dfdetect.evaluation.metrics import mean_perturbed_auc
from dfdetect.layout import ResultFiles

THRESHOLD_METRICS = ("precision", "recall", "specificity")

# Per run, then as mean and sample standard deviation over a model's runs (``*_mean`` / ``*_sd``):
# for the test split, and with the set's name in front for each evaluation set.
SPREAD_METRICS = ("roc_auc", "log_loss", "log_loss_calibrated")

COMPARISON_COLUMNS = [
    "model",
    "arch",
    "backbone",
    "frames",
    "epochs_run",
    "best_epoch",
    "selection",
    "n_test",
    "n_runs",
    "roc_auc",
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "roc_auc_mean",
    "roc_auc_sd",
    "log_loss",
    "log_loss_mean",
    "log_loss_sd",
    "log_loss_calibrated",
    "log_loss_calibrated_mean",
    "log_loss_calibrated_sd",
    "ece",
    "ece_calibrated",
    "val_log_loss",
    "val_log_loss_calibrated",
    "val_ece",
    "val_ece_calibrated",
    "calibration",
    "average_precision",
    *(f"{metric}_at_0.5" for metric in THRESHOLD_METRICS),
    "val_threshold",
    *(f"{metric}_at_val" for metric in THRESHOLD_METRICS),
    "train_time_s",
]

RUN_COLUMNS = [
    "model",
    "run",
    "seed",
    "best_epoch",
    "roc_auc",
    "log_loss",
    "log_loss_calibrated",
    "ece",
    "ece_calibrated",
    "val_log_loss",
    "val_log_loss_calibrated",
    "train_time_s",
]


def frames_label(model_settings: dict[str, Any], train_info: dict[str, Any]) -> str | None:
    """What a model sees per video: the middle frame, every frame, or the whole clip (td_lstm)."""
    if model_settings.get("arch") == "td_lstm":
        return "clip"
    return train_info.get("loader_mode") or model_settings.get("frames_per_video")


def model_row(
    name: str, model_settings: dict[str, Any], metrics: dict[str, Any] | None, train_info: dict[str, Any] | None
) -> dict[str, Any]:
    """One comparison row; absent settings, metrics or training facts are None."""
    metrics = metrics or {}
    train_info = train_info or {}
    interval = metrics.get("roc_auc_ci") or [None, None]
    at_default = metrics.get("at_0.5") or {}
    at_validation = metrics.get("at_validation_threshold") or {}
    row: dict[str, Any] = {
        "model": name,
        "arch": model_settings.get("arch"),
        "backbone": model_settings.get("backbone"),
        "frames": frames_label(model_settings, train_info),
        "epochs_run": train_info.get("epochs_run"),
        "best_epoch": train_info.get("best_epoch"),
        "selection": (train_info.get("selection") or {}).get("mode"),
        "n_test": metrics.get("n"),
        "roc_auc": metrics.get("roc_auc"),
        "roc_auc_ci_low": interval[0],
        "roc_auc_ci_high": interval[1],
        "average_precision": metrics.get("average_precision"),
        "val_threshold": at_validation.get("threshold"),
        "train_time_s": train_info.get("wall_time_s"),
        "calibration": (metrics.get("calibrated") or {}).get("calibration"),
        **calibration_values(metrics),
    }
    if model_settings.get("arch") == ENSEMBLE_ARCH:  # what it combines, in the columns a model describes itself in
        row["backbone"] = "+".join(model_settings.get("members") or ())
        row["frames"] = model_settings.get("combine")
    for metric in THRESHOLD_METRICS:
        row[f"{metric}_at_0.5"] = at_default.get(metric)
        row[f"{metric}_at_val"] = at_validation.get(metric)
    return {column: row.get(column) for column in COMPARISON_COLUMNS}


def calibration_values(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Raw and calibrated log loss and ECE of one metrics.json (``val_`` ones from its validation block)."""
    calibrated = metrics.get("calibrated") or {}
    values = {
        f"{prefix}log_loss": metrics.get("log_loss"),
        f"{prefix}log_loss_calibrated": calibrated.get("log_loss"),
        f"{prefix}ece": metrics.get("ece"),
        f"{prefix}ece_calibrated": calibrated.get("ece"),
    }
    if not prefix:
        validation = metrics.get("validation") or {}
        values |= {
            f"val_{key}": validation.get(key) for key in ("log_loss", "log_loss_calibrated", "ece", "ece_calibrated")
        }
    return values


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(content, None), or (None, why not) for a missing or unreadable file."""
    if not path.is_file():
        return None, f"no {path.name}"
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return None, f"{path} is unreadable ({error})"
    if not isinstance(content, dict):
        return None, f"{path} does not hold a JSON object"
    return content, None


def missing_reason(metrics_problem: str, train_problem: str | None) -> str:
    if metrics_problem != "no metrics.json":
        return metrics_problem
    if train_problem is None:
        return "no metrics.json: trained, but evaluation did not finish"
    return "no metrics.json and no train.json: training or evaluation did not finish"


def generalization_columns(name: str, metrics: dict[str, Any] | None, files: ResultFiles) -> dict[str, Any]:
    """Run 0's per evaluation set: ROC AUC [CI], raw and calibrated log loss and ECE, and the gap
    to the test split; ROC AUC per manipulation (test and sets); the mean ROC AUC over every
    perturbed level (robustness is measured on run 0)."""
    columns: dict[str, Any] = {}
    test_auc = (metrics or {}).get("roc_auc")
    for kind, entry in ((metrics or {}).get("per_manipulation") or {}).items():
        columns[f"auc_{kind}"] = entry.get("roc_auc")
    for set_name, path in files.runs[name][0].set_metrics.items():
        set_metrics, _ = read_json(Path(path))
        set_metrics = set_metrics or {}
        interval = set_metrics.get("roc_auc_ci") or [None, None]
        auc = set_metrics.get("roc_auc")
        columns[f"{set_name}_roc_auc"] = auc
        columns[f"{set_name}_roc_auc_ci_low"], columns[f"{set_name}_roc_auc_ci_high"] = interval
        columns |= calibration_values(set_metrics, f"{set_name}_")
        columns[f"{set_name}_n"] = set_metrics.get("n")
        columns[f"{set_name}_auc_gap"] = auc - test_auc if auc is not None and test_auc is not None else None
        for kind, entry in (set_metrics.get("per_manipulation") or {}).items():
            columns[f"{set_name}_auc_{kind}"] = entry.get("roc_auc")
    if name in files.robustness:
        path = Path(files.robustness[name])
        columns["mean_perturbed_auc"] = mean_perturbed_auc(pd.read_csv(path)) if path.is_file() else None
    return columns


def run_table(files: ResultFiles) -> pd.DataFrame:
    """One row per run of every model and ensemble (``RUN_COLUMNS``, then each set's
    ``SPREAD_METRICS``); a run without metrics has empty values."""
    rows = []
    for name, runs in files.runs.items():
        for run_number, run in enumerate(runs):
            metrics = read_json(Path(run.metrics))[0] or {}
            train_info = (read_json(Path(run.train_info))[0] if run.train_info is not None else None) or {}
            row = {
                "model": name,
                "run": run_number,
                "seed": train_info.get("seed"),
                "best_epoch": train_info.get("best_epoch"),
                "roc_auc": metrics.get("roc_auc"),
                "train_time_s": train_info.get("wall_time_s"),
                **calibration_values(metrics),
            }
            for set_name, path in run.set_metrics.items():
                set_metrics = read_json(Path(path))[0] or {}
                row[f"{set_name}_roc_auc"] = set_metrics.get("roc_auc")
                row |= {
                    f"{set_name}_{key}": value
                    for key, value in calibration_values(set_metrics).items()
                    if key in SPREAD_METRICS
                }
            rows.append(row)
    extra = list(dict.fromkeys(column for row in rows for column in row if column not in RUN_COLUMNS))
    table = pd.DataFrame(rows, columns=RUN_COLUMNS + extra)
    counts = ["run", "seed", "best_epoch"]
    table[counts] = table[counts].astype("Int64")
    return table


def spread(values: Any) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation (ddof=1; None with fewer than two values), n) of the values
    that are there; (None, None, 0) without any."""
    present = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").dropna().to_numpy(dtype=float)
    if len(present) == 0:
        return None, None, 0
    sd = float(np.std(present, ddof=1)) if len(present) >= 2 else None
    return float(np.mean(present)), sd, int(len(present))


def spread_columns(runs: pd.DataFrame) -> dict[str, Any]:
    """``n_runs`` (runs with a test ROC AUC or log loss) and ``*_mean`` / ``*_sd`` of the spread metrics."""
    columns: dict[str, Any] = {"n_runs": int(runs[["roc_auc", "log_loss"]].notna().any(axis=1).sum())}
    for metric in spread_metric_names(runs):
        mean, sd, _ = spread(runs[metric])
        columns[f"{metric}_mean"], columns[f"{metric}_sd"] = mean, sd
    return columns


def spread_metric_names(runs: pd.DataFrame) -> list[str]:
    """The run table's columns that are a spread metric of the test split or of a set."""
    sets = [column.removesuffix("_roc_auc") for column in runs.columns if column.endswith("_roc_auc")]
    names = list(SPREAD_METRICS)
    for set_name in sets:
        names += [f"{set_name}_{metric}" for metric in SPREAD_METRICS]
    return [name for name in names if name in runs.columns]


def comparison_table(
    models: Mapping[str, Mapping[str, Any]],
    files: ResultFiles,
    ensembles: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """(one row per configured model and ensemble sorted by mean log loss over its runs, missing
    metrics last; ["name: reason"] for each model, ensemble or run without metrics).

    Columns: ``COMPARISON_COLUMNS`` (run 0's figures, ``n_runs`` and the spread over runs), then
    the generalization columns (``generalization_columns``) of whatever sets, manipulations and
    robustness tables there are, then each set's spread over runs.
    """
    described = {name: dict(settings or {}) for name, settings in models.items()}
    described |= {name: {"arch": ENSEMBLE_ARCH, **entry} for name, entry in (ensembles or {}).items()}
    runs = run_table(files)
    rows, missing = [], []
    for name, settings in described.items():
        first = files.runs[name][0]
        metrics, metrics_problem = read_json(Path(first.metrics))
        train_info, train_problem = read_json(Path(first.train_info)) if first.train_info is not None else (None, None)
        if metrics_problem is not None:
            missing.append(f"{name}: {missing_reason(metrics_problem, train_problem)}")
        for run_number, run in enumerate(files.runs[name][1:], start=1):
            run_problem = read_json(Path(run.metrics))[1]
            if run_problem is not None:
                missing.append(f"{name} run {run_number}: {run_problem}")
        row = model_row(name, settings, metrics, train_info)
        spread_values = spread_columns(runs[runs["model"] == name])
        row |= {key: value for key, value in spread_values.items() if key in row}  # the test split's
        row |= generalization_columns(name, metrics, files)
        rows.append(row | {key: value for key, value in spread_values.items() if key not in row})  # each set's
    extra = list(dict.fromkeys(column for row in rows for column in row if column not in COMPARISON_COLUMNS))
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS + extra)
    counts = ["epochs_run", "best_epoch", "n_test", "n_runs"]
    table[counts] = table[counts].astype("Int64")  # stay integers in the CSV despite missing models
    table = table.sort_values(["log_loss_mean", "model"], na_position="last", kind="stable", key=sort_key)
    return table.reset_index(drop=True), missing


def sort_key(column: pd.Series) -> pd.Series:
    # metric columns hold None for missing models; sort them as numbers so that None goes last
    return pd.to_numeric(column) if column.name.startswith("log_loss") else column


def baseline_name(baseline: str | None, models: Mapping[str, Any]) -> str | None:
    """The model the spread is judged against: ``evaluation.baseline``, else the first configured model."""
    return baseline if baseline is not None else next(iter(models), None)
