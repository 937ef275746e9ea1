"""The comparison's markdown tables (``dfdetect.evaluation.report`` puts them into comparison.md and
the HTML report): the main table, each model's training, decisions at a threshold, calibration, the
spread over runs with its verdicts, each run, generalization and the data cleaning."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dfdetect.evaluation.comparison import SPREAD_METRICS, THRESHOLD_METRICS
from dfdetect.evaluation.markdown import is_missing, markdown_table, number, text


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


def main_markdown(table: pd.DataFrame) -> str:
    """The table to read first (the end of a run prints it): per model its frames, then mean ± sd
    (runs) of test ROC AUC, test log loss raw and calibrated and each evaluation set's ROC AUC, run
    0's mean perturbed ROC AUC and training time."""
    sets = spread_set_names(table)
    perturbed = "mean_perturbed_auc" in table.columns
    header = ["model", "frames", "test ROC AUC", "test log loss", "calibrated log loss"]
    header += [f"{name} ROC AUC" for name in sets]
    header += ["mean perturbed ROC AUC"] if perturbed else []
    header += ["train time (s)"]
    rows = []
    for _, row in table.iterrows():
        cells = [text(row["model"]), text(row["frames"])]
        cells += [mean_sd(row, metric) for metric in SPREAD_METRICS]
        cells += [mean_sd(row, f"{name}_roc_auc") for name in sets]
        cells += [number(row.get("mean_perturbed_auc"))] if perturbed else []
        cells += [number(row["train_time_s"], 0)]
        rows.append(cells)
    return markdown_table(header, rows)


def models_markdown(table: pd.DataFrame) -> str:
    """What each model is and how its run 0 (the model to deploy) went: its epochs, how the saved one
    was selected, its test ROC AUC with the 95% interval and the threshold-free average precision."""
    header = [
        "model",
        "arch",
        "backbone",
        "runs",
        "epochs run",
        "selected by",
        "run 0 test ROC AUC [95% CI]",
        "average precision",
    ]
    rows = [
        [
            text(row["model"]),
            text(row["arch"]),
            text(row["backbone"]),
            text(row["n_runs"]),
            text(row["epochs_run"]),
            selection_text(row),
            auc_with_interval(row),
            number(row["average_precision"]),
        ]
        for _, row in table.iterrows()
    ]
    return markdown_table(header, rows)


def thresholds_markdown(table: pd.DataFrame) -> str:
    """Precision, recall and specificity at 0.5 and at the threshold chosen on validation: a row each."""
    header = ["model", "threshold", "precision", "recall", "specificity"]
    rows = []
    for _, row in table.iterrows():
        validation = "–" if is_missing(row["val_threshold"]) else f"{number(row['val_threshold'])} (validation)"
        for threshold, suffix in (("0.5", "at_0.5"), (validation, "at_val")):
            rows.append(
                [text(row["model"]), threshold, *(number(row[f"{metric}_{suffix}"]) for metric in THRESHOLD_METRICS)]
            )
    return markdown_table(header, rows)


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


def spread_markdown(table: pd.DataFrame, baseline: str | None) -> str:
    """One line per model on whether its ROC AUC difference to ``baseline`` (test and each set)
    exceeds the spread over runs (the figures are the main table's: mean ± sd (runs))."""
    sets = spread_set_names(table)
    by_name = {row["model"]: row for _, row in table.iterrows()}
    if baseline not in by_name:
        return f"No baseline to compare with (`evaluation.baseline`: {baseline!r} is not in the comparison)."
    metrics = [("roc_auc", "test ROC AUC")] + [(f"{name}_roc_auc", f"{name} ROC AUC") for name in sets]
    lines = [verdict_line(row, by_name[baseline], metrics) for name, row in by_name.items() if name != baseline]
    return f"Against the baseline `{baseline}` (ROC AUC):\n\n" + "\n".join(lines)


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
