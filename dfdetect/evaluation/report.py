"""Model comparison: one row per configured model, sorted by log loss, plus the data summary.

Reads what the evaluate and train jobs left on disk (``eval/{model}/metrics.json``,
``models/{model}/train.json``). A configured model without metrics (training failed, evaluation
did not run) still gets a row with empty metrics and is named in the "missing" list with the
reason; the report is written either way. Folders of models that are no longer in the config
are ignored: the report describes the configured experiment, and a removed model's stale
results would otherwise look current.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import pandas as pd

from dfdetect.atomic import atomic_path, atomic_write_text
from dfdetect.evaluation.markdown import html_page, is_missing, markdown_table, number, text
from dfdetect.evaluation.metrics import mean_perturbed_auc
from dfdetect.evaluation.plots import plot_roc_comparison
from dfdetect.evaluation.run_summary import run_summary_markdown, write_run_summary
from dfdetect.layout import REPORT_FILES, SCORING_FILE, ResultFiles, RulePaths

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


def main_markdown(table: pd.DataFrame) -> str:
    """The table to read first: per model its frames, test ROC AUC and log loss, each evaluation
    set's ROC AUC, the mean perturbed ROC AUC and the training time (the end of a run prints it)."""
    sets = set_names(table)
    perturbed = "mean_perturbed_auc" in table.columns
    header = ["model", "frames", "test ROC AUC [95% CI]", "test log loss"]
    header += [f"{name} ROC AUC [95% CI]" for name in sets]
    header += ["mean perturbed ROC AUC"] if perturbed else []
    header += ["train time (s)"]
    rows = []
    for _, row in table.iterrows():
        cells = [text(row["model"]), text(row["frames"]), auc_with_interval(row), number(row["log_loss"])]
        cells += [interval_text(row, f"{name}_") for name in sets]
        cells += [number(row.get("mean_perturbed_auc"))] if perturbed else []
        cells += [number(row["train_time_s"], 0)]
        rows.append(cells)
    return markdown_table(header, rows)


def models_markdown(table: pd.DataFrame) -> str:
    """What each model is and how its training went, with the threshold-free average precision."""
    header = ["model", "arch", "backbone", "frames", "epochs run", "selected by", "average precision"]
    rows = [
        [
            text(row["model"]),
            text(row["arch"]),
            text(row["backbone"]),
            text(row["frames"]),
            text(row["epochs_run"]),
            selection_text(row),
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


def best_model(table: pd.DataFrame) -> pd.Series | None:
    """The model with the lowest test log loss (the table is sorted by it), or None without metrics."""
    scored = table[table["log_loss"].notna()]
    return None if scored.empty else scored.iloc[0]


def best_model_line(table: pd.DataFrame, model_files: Mapping[str, str | Path] | None = None) -> str:
    best = best_model(table)
    if best is None:
        return "No model has metrics yet."
    line = (
        f"Best by test log loss: **{best['model']}** (log loss {number(best['log_loss'])}, "
        f"ROC AUC {auc_with_interval(best)})."
    )
    model_file = (model_files or {}).get(best["model"])
    if model_file is not None:
        line += (
            f" The model to deploy: `{model_file}` (with `{SCORING_FILE}` beside it: the frames, aggregation "
            "and image size it was evaluated with, which `dfdetect predict` applies)."
        )
    return line


def next_steps_markdown(table: pd.DataFrame, model_files: Mapping[str, str | Path] | None = None) -> str:
    best = best_model(table)
    model_file = (model_files or {}).get(best["model"]) if best is not None else None
    steps = []
    if model_file is not None:
        steps.append(
            f"Score new videos (mp4, face folders, face-batch zips, single face crops) as evaluation scored the "
            f"test split: `dfdetect predict --model {model_file} INPUT... --out scores.csv`."
        )
    steps += [
        "Look at the HTML report (`make report`, then open `report.html`): the ROC curves of every model on "
        "each dataset, and per model its training history, plots and robustness.",
        "Before trusting a model on other data, read *Generalization* below: a test split holds fakes from the "
        "same generators as the training data; evaluation sets and perturbations do not. With few REAL test "
        "videos the intervals are wide: read them before the point values.",
        "Real data: `snakemake --cores all --configfile config/real.yaml` (README, *Your own data*).",
    ]
    return "\n".join(f"- {step}" for step in steps)


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


INTRO_TEXT = (
    "Video-level metrics on the test split. ROC AUC, average precision and log loss come from "
    "probabilities; the 95% interval resamples families. Sorted by test log loss, the competition's metric."
)
THRESHOLDS_TEXT = (
    "At 0.5, and at the threshold chosen on the validation split (maximum "
    "balanced accuracy), which evaluation sets also use."
)


def comparison_sections(
    table: pd.DataFrame, missing: list[str], model_files: Mapping[str, str | Path] | None = None
) -> list[str]:
    """The comparison's markdown sections, for comparison.md and the HTML page."""
    missing_section = "\n".join(f"- {entry}" for entry in missing) if missing else "All configured models have metrics."
    generalization = generalization_markdown(table)
    return [
        "# dfdetect model comparison",
        INTRO_TEXT,
        main_markdown(table),
        best_model_line(table, model_files),
        "## Next steps",
        next_steps_markdown(table, model_files),
        *(["## Generalization", GENERALIZATION_TEXT, generalization] if generalization else []),
        "## Models",
        models_markdown(table),
        "## Decisions at a threshold",
        THRESHOLDS_TEXT,
        thresholds_markdown(table),
        "## Missing models",
        missing_section,
    ]


def data_sections(
    clean_summary: dict[str, Any], split_summary: dict[str, Any], run_summary: dict[str, Any] | None
) -> list[str]:
    sections = ["## Data cleaning", cleaning_markdown(clean_summary, split_summary)]
    if run_summary is not None:
        sections += ["## What this run ingested, kept and dropped", run_summary_markdown(run_summary)]
    return sections


def write_report(
    table: pd.DataFrame,
    missing: list[str],
    clean_summary: dict[str, Any],
    split_summary: dict[str, Any],
    csv_path: str | Path,
    md_path: str | Path,
    run_summary: dict[str, Any] | None = None,
    model_files: Mapping[str, str | Path] | None = None,
) -> None:
    """``comparison.csv`` (the table as is) and ``comparison.md`` (formatted, with the data summary
    and, when given, the run summary: what was ingested, kept and dropped)."""
    with atomic_path(csv_path, suffix=".csv") as temporary:
        table.to_csv(temporary, index=False)
    sections = comparison_sections(table, missing, model_files) + data_sections(
        clean_summary, split_summary, run_summary
    )
    atomic_write_text(md_path, "\n\n".join(sections) + "\n")


@dataclass(frozen=True)
class ReportPaths(RulePaths):
    """Every file the report rule writes; the field names are its output names."""

    csv: Path
    markdown: Path
    html: Path  # the comparison, rendered (shown in the page of `snakemake --report`)
    roc: Path  # every model's ROC curve on the test split and on each evaluation set
    summary: Path
    summary_html: Path
    config: Path  # the settings the results depend on

    FILES: ClassVar[Mapping[str, str]] = REPORT_FILES


def write_report_pages(
    paths: ReportPaths,
    table: pd.DataFrame,
    missing: list[str],
    files: ResultFiles,
    clean_summary: dict[str, Any],
    split_summary: dict[str, Any],
    run_summary: dict[str, Any],
    config: Mapping[str, Any],
) -> None:
    """Everything the report rule writes: comparison.csv/.md, the run summary, and the pages and
    figure of the HTML report (comparison, data, configuration, every model's ROC curves)."""
    write_report(
        table, missing, clean_summary, split_summary, paths.csv, paths.markdown, run_summary, files.model_files
    )
    write_run_summary(run_summary, paths.summary)
    atomic_write_text(paths.html, html_page("Model comparison", comparison_sections(table, missing, files.model_files)))
    data = ["# Data", *data_sections(clean_summary, split_summary, run_summary)]
    atomic_write_text(paths.summary_html, html_page("Data", data))
    atomic_write_text(paths.config, config_page(config))
    plot_roc_comparison(roc_panels(files), paths.roc, "ROC curves of every model")


def roc_panels(files: ResultFiles) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Dataset -> model -> (labels, scores) from the predictions that exist (a failed model has none)."""
    panels: dict[str, dict[str, tuple[Any, Any]]] = {"test split": {}}
    for name, path in files.predictions.items():
        if Path(path).is_file():
            scored = pd.read_parquet(path, columns=["label", "p_fake"])
            panels["test split"][name] = (scored["label"], scored["p_fake"])
    for name, by_set in files.set_predictions.items():
        for set_name, path in by_set.items():
            if Path(path).is_file():
                scored = pd.read_parquet(path, columns=["label", "p_fake"])
                panels.setdefault(f"evaluation set {set_name}", {})[name] = (scored["label"], scored["p_fake"])
    return panels


CONFIG_TEXT = (
    "The settings this run's results were computed with (`config.yaml`, or the file given with "
    "`--configfile`, completed with the schema's defaults). Keys that change only speed (`resources`, "
    "`loader_workers`) are left out: they change no result. Every key is described in "
    "`dfdetect/config.schema.yaml`."
)


def config_page(config: Mapping[str, Any]) -> str:
    import yaml

    listing = html.escape(yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False))
    return html_page("Configuration", ["# Configuration", CONFIG_TEXT], after=f"<pre>{listing}</pre>")
