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

import pandas as pd

from dfdetect.atomic import atomic_path, atomic_write_text
from dfdetect.evaluation.markdown import is_missing, markdown_table, number, text
from dfdetect.evaluation.metrics import mean_perturbed_auc
from dfdetect.evaluation.run_summary import run_summary_markdown
from dfdetect.layout import ResultFiles

THRESHOLD_METRICS = ("precision", "recall", "specificity")
COMPARISON_COLUMNS = [
    "model",
    "arch",
    "backbone",
    "frames",
    "epochs_run",
    "best_epoch",
    "selection",
    "n_test",
    "roc_auc",
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "log_loss",
    "average_precision",
    *(f"{metric}_at_0.5" for metric in THRESHOLD_METRICS),
    "val_threshold",
    *(f"{metric}_at_val" for metric in THRESHOLD_METRICS),
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
        "log_loss": metrics.get("log_loss"),
        "average_precision": metrics.get("average_precision"),
        "val_threshold": at_validation.get("threshold"),
        "train_time_s": train_info.get("wall_time_s"),
    }
    for metric in THRESHOLD_METRICS:
        row[f"{metric}_at_0.5"] = at_default.get(metric)
        row[f"{metric}_at_val"] = at_validation.get(metric)
    return {column: row[column] for column in COMPARISON_COLUMNS}


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
    """Per evaluation set: ROC AUC [CI], log loss and the gap to the test split; ROC AUC per
    manipulation (test and sets); the mean ROC AUC over every perturbed level."""
    columns: dict[str, Any] = {}
    test_auc = (metrics or {}).get("roc_auc")
    for kind, entry in ((metrics or {}).get("per_manipulation") or {}).items():
        columns[f"auc_{kind}"] = entry.get("roc_auc")
    for set_name, path in (files.set_metrics.get(name) or {}).items():
        set_metrics, _ = read_json(Path(path))
        set_metrics = set_metrics or {}
        interval = set_metrics.get("roc_auc_ci") or [None, None]
        auc = set_metrics.get("roc_auc")
        columns[f"{set_name}_roc_auc"] = auc
        columns[f"{set_name}_roc_auc_ci_low"], columns[f"{set_name}_roc_auc_ci_high"] = interval
        columns[f"{set_name}_log_loss"] = set_metrics.get("log_loss")
        columns[f"{set_name}_n"] = set_metrics.get("n")
        columns[f"{set_name}_auc_gap"] = auc - test_auc if auc is not None and test_auc is not None else None
        for kind, entry in (set_metrics.get("per_manipulation") or {}).items():
            columns[f"{set_name}_auc_{kind}"] = entry.get("roc_auc")
    if name in files.robustness:
        path = Path(files.robustness[name])
        columns["mean_perturbed_auc"] = mean_perturbed_auc(pd.read_csv(path)) if path.is_file() else None
    return columns


def comparison_table(models: Mapping[str, Mapping[str, Any]], files: ResultFiles) -> tuple[pd.DataFrame, list[str]]:
    """(one row per configured model sorted by log loss with missing metrics last, ["model: reason"]).

    Columns: ``COMPARISON_COLUMNS``, then the generalization columns (``generalization_columns``)
    of whatever sets, manipulations and robustness tables there are.
    """
    rows, missing = [], []
    for name, settings in models.items():
        metrics, metrics_problem = read_json(Path(files.metrics[name]))
        train_info, train_problem = read_json(Path(files.train_info[name]))
        if metrics_problem is not None:
            missing.append(f"{name}: {missing_reason(metrics_problem, train_problem)}")
        rows.append(model_row(name, settings or {}, metrics, train_info) | generalization_columns(name, metrics, files))
    extra = list(dict.fromkeys(column for row in rows for column in row if column not in COMPARISON_COLUMNS))
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS + extra)
    counts = ["epochs_run", "best_epoch", "n_test"]
    table[counts] = table[counts].astype("Int64")  # stay integers in the CSV despite missing models
    table = table.sort_values(["log_loss", "model"], na_position="last", kind="stable", key=sort_key)
    return table.reset_index(drop=True), missing


def sort_key(column: pd.Series) -> pd.Series:
    # metric columns hold None for missing models; sort them as numbers so that None goes last
    return pd.to_numeric(column) if column.name == "log_loss" else column


def auc_with_interval(row: pd.Series) -> str:
    if is_missing(row["roc_auc"]):
        return "–"
    if is_missing(row["roc_auc_ci_low"]) or is_missing(row["roc_auc_ci_high"]):
        return number(row["roc_auc"])
    return f"{number(row['roc_auc'])} [{number(row['roc_auc_ci_low'])}, {number(row['roc_auc_ci_high'])}]"


def comparison_markdown(table: pd.DataFrame) -> str:
    header = [
        "model",
        "arch",
        "backbone",
        "frames",
        "epochs",
        "selected by",
        "ROC AUC [95% CI]",
        "log loss",
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
                auc_with_interval(row),
                number(row["log_loss"]),
                number(row["average_precision"]),
                *(number(row[f"{metric}_at_0.5"]) for metric in THRESHOLD_METRICS),
                number(row["val_threshold"]),
                *(number(row[f"{metric}_at_val"]) for metric in THRESHOLD_METRICS),
                number(row["train_time_s"], 0),
            ]
        )
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
    "How each model does on data unlike its training data: ROC AUC on each evaluation set (never "
    "trained on; threshold-free) and its gap to the model's own test split, ROC AUC per manipulation "
    "(that kind's fakes against all the reals) where the metadata names it, and the mean ROC AUC of the "
    "test split over every DeeperForensics-1.0 perturbation level (7 kinds x 5 levels)."
)


def best_model_line(table: pd.DataFrame) -> str:
    scored = table[table["log_loss"].notna()]
    if scored.empty:
        return "No model has metrics yet."
    best = scored.iloc[0]
    return (
        f"Best by log loss: **{best['model']}** (log loss {number(best['log_loss'])}, "
        f"ROC AUC {auc_with_interval(best)})."
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
) -> None:
    """``comparison.csv`` (the table as is) and ``comparison.md`` (formatted, with the data summary
    and, when given, the run summary: what was ingested, kept and dropped)."""
    with atomic_path(csv_path, suffix=".csv") as temporary:
        table.to_csv(temporary, index=False)
    missing_section = "\n".join(f"- {entry}" for entry in missing) if missing else "All configured models have metrics."
    sections = [
        "# dfdetect model comparison",
        "Video-level metrics on the test split. ROC AUC, average precision (AP) and log loss come "
        "from probabilities; the 95% interval resamples families. Precision, recall and "
        "specificity are given at 0.5 and at the threshold chosen on the validation split "
        "(maximum balanced accuracy). Sorted by log loss, the competition's metric.",
        comparison_markdown(table),
        best_model_line(table),
        *(
            ["## Generalization", GENERALIZATION_TEXT, generalization]
            if (generalization := generalization_markdown(table))
            else []
        ),
        "## Missing models",
        missing_section,
        "## Data cleaning",
        cleaning_markdown(clean_summary, split_summary),
    ]
    if run_summary is not None:
        sections += ["## What this run ingested, kept and dropped", run_summary_markdown(run_summary)]
    atomic_write_text(md_path, "\n\n".join(sections) + "\n")
