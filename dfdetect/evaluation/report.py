"""Model comparison: one row per configured model, sorted by log loss, plus the data summary.

Reads what the evaluate and train jobs left on disk (``eval/{model}/metrics.json``,
``models/{model}/train.json``). A configured model without metrics (training failed, evaluation
did not run) still gets a row with empty metrics and is named in the "missing" list with the
reason; the report is written either way. Folders of models that are no longer in the config
are ignored: the report describes the configured experiment, and a removed model's stale
results would otherwise look current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_path, atomic_write_text
from dfdetect.evaluation.ensemble import ENSEMBLE_ARCH
from dfdetect.evaluation.markdown import is_missing, markdown_table, number, text
from dfdetect.evaluation.metrics import mean_perturbed_auc
from dfdetect.evaluation.run_summary import run_summary_markdown
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


def auc_with_interval(row: pd.Series) -> str:
    if is_missing(row["roc_auc"]):
        return "–"
    if is_missing(row["roc_auc_ci_low"]) or is_missing(row["roc_auc_ci_high"]):
        return number(row["roc_auc"])
    return f"{number(row['roc_auc'])} [{number(row['roc_auc_ci_low'])}, {number(row['roc_auc_ci_high'])}]"


def mean_sd(row: pd.Series, metric: str) -> str:
    """``mean ± sd (n)`` of a spread metric over the row's runs (sd ``–`` for a single run)."""
    mean, sd, runs = row.get(f"{metric}_mean"), row.get(f"{metric}_sd"), row.get("n_runs")
    if is_missing(mean):
        return "–"
    return f"{number(mean)} ± {number(sd)} ({text(runs)})"


def raw_to_calibrated(row: pd.Series, prefix: str, metric: str) -> str:
    """``raw → calibrated`` of ``{prefix}{metric}`` and ``{prefix}{metric}_calibrated``."""
    raw, calibrated = row.get(f"{prefix}{metric}"), row.get(f"{prefix}{metric}_calibrated")
    if is_missing(raw) and is_missing(calibrated):
        return "–"
    return f"{number(raw)} → {number(calibrated)}"


def comparison_markdown(table: pd.DataFrame) -> str:
    header = [
        "model",
        "arch",
        "backbone",
        "frames",
        "epochs",
        "selected by",
        "ROC AUC, mean ± sd (runs)",
        "log loss, mean ± sd (runs)",
        "calibrated log loss, mean ± sd (runs)",
        "run 0: ROC AUC [95% CI]",
        "run 0: log loss → calibrated",
        "AP",
        "precision@0.5",
        "recall@0.5",
        "specificity@0.5",
        "val threshold",
        "precision@val",
        "recall@val",
        "specificity@val",
        "train time (s)",
    ]
    rows = []
    for _, row in table.iterrows():
        rows.append(
            [
                text(row["model"]),
                text(row["arch"]),
                text(row["backbone"]),
                text(row["frames"]),
                text(row["epochs_run"]),
                selection_text(row),
                *(mean_sd(row, metric) for metric in SPREAD_METRICS),
                auc_with_interval(row),
                raw_to_calibrated(row, "", "log_loss"),
                number(row["average_precision"]),
                *(number(row[f"{metric}_at_0.5"]) for metric in THRESHOLD_METRICS),
                number(row["val_threshold"]),
                *(number(row[f"{metric}_at_val"]) for metric in THRESHOLD_METRICS),
                number(row["train_time_s"], 0),
            ]
        )
    return markdown_table(header, rows)


CALIBRATION_TEXT = (
    "Each model's video scores are calibrated on its validation split (`evaluation.calibration`: temperature "
    "or Platt scaling, `models/{model}/calibration.json`; `dfdetect predict` applies it unless `--raw`); an "
    "ensemble combines its members' calibrated scores. Log loss and expected calibration error (ECE) of the "
    "raw → calibrated scores, run 0. Calibration keeps the order of the scores: ROC AUC does not change."
)


def calibration_markdown(table: pd.DataFrame) -> str:
    sets = set_names(table)
    header = ["model", "calibration", "validation log loss", "validation ECE", "test log loss", "test ECE"]
    for name in sets:
        header += [f"{name} log loss", f"{name} ECE"]
    rows = []
    for _, row in table.iterrows():
        cells = [text(row["model"]), text(row.get("calibration"))]
        cells += [raw_to_calibrated(row, "val_", metric) for metric in ("log_loss", "ece")]
        cells += [raw_to_calibrated(row, "", metric) for metric in ("log_loss", "ece")]
        for name in sets:
            cells += [raw_to_calibrated(row, f"{name}_", metric) for metric in ("log_loss", "ece")]
        rows.append(cells)
    return markdown_table(header, rows)


SPREAD_TEXT = (
    "Each figure is the mean ± sample standard deviation over the model's runs (`repeats`: the same "
    "settings with seeds seed, seed+1, ...), with the number of runs. A difference to the baseline is "
    "*beyond the spread* when the two mean ± sd ranges do not overlap (|difference| > sd + sd of the "
    "baseline): a rough screen with few runs, not a significance test; *within the spread* means these "
    "runs cannot tell the two apart."
)


def spread_markdown(table: pd.DataFrame, baseline: str | None) -> str:
    """The spread table (test and each set: ROC AUC and calibrated log loss, mean ± sd (runs)) and
    one line per model on whether its difference to ``baseline`` exceeds the spread."""
    sets = spread_set_names(table)
    metrics = [("roc_auc", "test ROC AUC"), ("log_loss_calibrated", "test calibrated log loss")]
    for name in sets:
        metrics += [
            (f"{name}_roc_auc", f"{name} ROC AUC"),
            (f"{name}_log_loss_calibrated", f"{name} calibrated log loss"),
        ]
    rows = [[text(row["model"]), *(mean_sd(row, metric) for metric, _ in metrics)] for _, row in table.iterrows()]
    parts = [markdown_table(["model", *(label for _, label in metrics)], rows)]
    by_name = {row["model"]: row for _, row in table.iterrows()}
    if baseline in by_name:
        auc_metrics = [("roc_auc", "test ROC AUC")] + [(f"{name}_roc_auc", f"{name} ROC AUC") for name in sets]
        lines = [verdict_line(row, by_name[baseline], auc_metrics) for name, row in by_name.items() if name != baseline]
        parts.append(f"Against the baseline `{baseline}` (ROC AUC):\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


def spread_set_names(table: pd.DataFrame) -> list[str]:
    return [name for name in set_names(table) if f"{name}_roc_auc_mean" in table.columns]


def difference_text(row: pd.Series, base: pd.Series, metric: str, label: str) -> str:
    mean, base_mean = row.get(f"{metric}_mean"), base.get(f"{metric}_mean")
    if is_missing(mean) or is_missing(base_mean):
        return f"{label}: not measured"
    difference = float(mean) - float(base_mean)
    figures = f"{mean_sd(row, metric)} vs {mean_sd(base, metric)}"
    sd, base_sd = row.get(f"{metric}_sd"), base.get(f"{metric}_sd")
    if is_missing(sd) or is_missing(base_sd):
        return f"{label} {difference:+.3f} ({figures}): one run on a side, no spread to judge it by"
    beyond = abs(difference) > float(sd) + float(base_sd)
    return f"{label} {difference:+.3f} ({figures}): {'beyond' if beyond else 'within'} the spread"


def verdict_line(row: pd.Series, base: pd.Series, metrics: list[tuple[str, str]]) -> str:
    differences = "; ".join(difference_text(row, base, metric, label) for metric, label in metrics)
    return f"- `{row['model']}`: {differences}."


def runs_markdown(runs: pd.DataFrame) -> str:
    sets = [column.removesuffix("_roc_auc") for column in runs.columns if column.endswith("_roc_auc")]
    header = ["model", "run", "seed", "best epoch", "test ROC AUC", "test log loss → calibrated"]
    for name in sets:
        header += [f"{name} ROC AUC", f"{name} log loss → calibrated"]
    rows = []
    for _, row in runs.iterrows():
        cells = [text(row["model"]), text(row["run"]), text(row["seed"]), text(row["best_epoch"])]
        cells += [number(row["roc_auc"]), raw_to_calibrated(row, "", "log_loss")]
        for name in sets:
            cells += [number(row.get(f"{name}_roc_auc")), raw_to_calibrated(row, f"{name}_", "log_loss")]
        rows.append(cells)
    return markdown_table(header, rows)


SELECTION_TEXT = {
    "labelled": "labelled val. loss",
    "self_blended": "self-blended val. loss",
    "last_epoch": "last epoch",
}


def selection_text(row: pd.Series) -> str:
    """How the model's saved epoch was chosen (train.json ``selection``) and which epoch it is."""
    mode = row.get("selection")
    if is_missing(mode):
        return "–"
    epoch = row.get("best_epoch")
    return SELECTION_TEXT.get(str(mode), str(mode)) + ("" if is_missing(epoch) else f", epoch {int(epoch)}")


def set_names(table: pd.DataFrame) -> list[str]:
    return [
        column.removesuffix("_roc_auc_ci_low")
        for column in table.columns
        if column.endswith("_roc_auc_ci_low") and column != "roc_auc_ci_low"
    ]


def interval_text(row: pd.Series, prefix: str) -> str:
    """``AUC [low, high]`` from the ``{prefix}roc_auc`` columns."""
    renamed = {
        "roc_auc": row.get(f"{prefix}roc_auc"),
        "roc_auc_ci_low": row.get(f"{prefix}roc_auc_ci_low"),
        "roc_auc_ci_high": row.get(f"{prefix}roc_auc_ci_high"),
    }
    return auc_with_interval(pd.Series(renamed))


def generalization_markdown(table: pd.DataFrame) -> str | None:
    """Test, evaluation-set, per-manipulation and perturbed ROC AUC side by side; None without any."""
    sets = set_names(table)
    manipulations = [column for column in table.columns if column.startswith("auc_")]
    set_manipulations = [
        column
        for column in table.columns
        if any(column.startswith(f"{name}_auc_") and column != f"{name}_auc_gap" for name in sets)
    ]
    perturbed = "mean_perturbed_auc" in table.columns
    if not (sets or manipulations or perturbed):
        return None
    header = ["model", "selected by", "test ROC AUC [95% CI]"]
    for name in sets:
        header += [f"{name} ROC AUC [95% CI]", f"{name} log loss", f"{name} gap to test"]
    header += [f"test {column.removeprefix('auc_')}" for column in manipulations]
    header += [column.replace("_auc_", " ") for column in set_manipulations]
    header += ["mean perturbed ROC AUC"] if perturbed else []
    rows = []
    for _, row in table.iterrows():
        cells = [text(row["model"]), selection_text(row), auc_with_interval(row)]
        for name in sets:
            gap = row.get(f"{name}_auc_gap")
            cells += [
                interval_text(row, f"{name}_"),
                number(row.get(f"{name}_log_loss")),
                "–" if is_missing(gap) else f"{float(gap):+.3f}",
            ]
        cells += [number(row.get(column)) for column in manipulations + set_manipulations]
        cells += [number(row.get("mean_perturbed_auc"))] if perturbed else []
        rows.append(cells)
    return markdown_table(header, rows)


GENERALIZATION_TEXT = (
    "How each model (run 0) does on data unlike its training data: ROC AUC on each evaluation set (never "
    "trained on; threshold-free) and its gap to the model's own test split, ROC AUC per manipulation "
    "(that kind's fakes against all the reals) where the metadata names it, and the mean ROC AUC of the "
    "test split over every DeeperForensics-1.0 perturbation level (7 kinds x 5 levels)."
)


def best_model_line(table: pd.DataFrame) -> str:
    scored = table[table["log_loss_mean"].notna()]
    if scored.empty:
        return "No model has metrics yet."
    best = scored.iloc[0]
    return (
        f"Best by mean log loss: **{best['model']}** (log loss {mean_sd(best, 'log_loss')}, "
        f"ROC AUC {mean_sd(best, 'roc_auc')})."
    )


def balance_cells(balance: dict[str, Any]) -> list[str]:
    share = balance.get("fake_share")
    return [
        text(balance.get("videos")),
        text(balance.get("real")),
        text(balance.get("fake")),
        "–" if is_missing(share) else f"{100 * share:.1f}%",
        text(balance.get("families")),
    ]


def cleaning_markdown(clean_summary: dict[str, Any], split_summary: dict[str, Any]) -> str:
    balance_header = ["videos", "REAL", "FAKE", "FAKE share", "families"]
    before_after = markdown_table(
        ["stage", *balance_header],
        [[stage, *balance_cells(clean_summary.get(stage) or {})] for stage in ("before", "after")],
    )
    dropped = clean_summary.get("dropped") or {}
    drops = markdown_table(
        ["drop reason", "videos"], [[reason, text(count)] for reason, count in dropped.items()] or [["(none)", "0"]]
    )
    splits = markdown_table(
        ["split", *balance_header, "share of videos"],
        [
            [name, *balance_cells(split_summary[name]), number(split_summary[name].get("share"), 3)]
            for name in ("train", "validation", "test")
            if isinstance(split_summary.get(name), dict)
        ],
    )
    seed = split_summary.get("seed")
    return "\n\n".join(
        [
            "### Videos before and after cleaning",
            before_after,
            "### Videos dropped, by reason",
            drops,
            f"### Class balance per split (seed {text(seed)}; families never straddle splits)",
            splits,
        ]
    )


def write_report(
    table: pd.DataFrame,
    missing: list[str],
    clean_summary: dict[str, Any],
    split_summary: dict[str, Any],
    csv_path: str | Path,
    md_path: str | Path,
    run_summary: dict[str, Any] | None = None,
    runs: pd.DataFrame | None = None,
    runs_path: str | Path | None = None,
    baseline: str | None = None,
) -> None:
    """``comparison.csv`` (the table as is), ``comparison_runs.csv`` (``runs``, one row per run, when
    given) and ``comparison.md`` (formatted: the comparison, calibration, the spread over runs against
    ``baseline``, generalization, each run, the data summary and, when given, the run summary: what
    was ingested, kept and dropped)."""
    with atomic_path(csv_path, suffix=".csv") as temporary:
        table.to_csv(temporary, index=False)
    if runs is not None and runs_path is not None:
        with atomic_path(runs_path, suffix=".csv") as temporary:
            runs.to_csv(temporary, index=False)
    missing_section = "\n".join(f"- {entry}" for entry in missing) if missing else "All configured models have metrics."
    sections = [
        "# dfdetect model comparison",
        "Video-level metrics on the test split. ROC AUC, average precision (AP) and log loss come "
        "from probabilities; the 95% interval resamples families. A model with `repeats` has several "
        "runs: mean ± sample standard deviation (runs) over them, and run 0 (the model to deploy) for "
        "the rest. Precision, recall and specificity are given at 0.5 and at the threshold chosen on "
        "the validation split (maximum balanced accuracy). Sorted by mean log loss, the competition's metric.",
        comparison_markdown(table),
        best_model_line(table),
        "## Spread over runs",
        SPREAD_TEXT,
        spread_markdown(table, baseline),
        "## Calibration",
        CALIBRATION_TEXT,
        calibration_markdown(table),
        *(
            ["## Generalization", GENERALIZATION_TEXT, generalization]
            if (generalization := generalization_markdown(table))
            else []
        ),
        *(["## Each run", runs_markdown(runs)] if runs is not None else []),
        "## Missing models",
        missing_section,
        "## Data cleaning",
        cleaning_markdown(clean_summary, split_summary),
    ]
    if run_summary is not None:
        sections += ["## What this run ingested, kept and dropped", run_summary_markdown(run_summary)]
    atomic_write_text(md_path, "\n\n".join(sections) + "\n")


def baseline_name(baseline: str | None, models: Mapping[str, Any]) -> str | None:
    """The model the spread is judged against: ``evaluation.baseline``, else the first configured model."""
    return baseline if baseline is not None else next(iter(models), None)
