"""The model comparison's files and pages: ``comparison.csv`` (one row per model and ensemble),
``comparison_runs.csv`` (one row per run), ``comparison.md``, and the HTML pages and overlaid ROC
figure of ``snakemake --report`` (``write_report_pages``, the report rule).

The tables come from ``dfdetect.evaluation.comparison``; their markdown from
``dfdetect.evaluation.report_tables``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import pandas as pd

from dfdetect.atomic import atomic_path, atomic_write_text
from dfdetect.evaluation.ensemble import ENSEMBLE_ARCH
from dfdetect.evaluation.markdown import html_page
from dfdetect.evaluation.plots import plot_roc_comparison
from dfdetect.evaluation.report_tables import (
    calibration_markdown,
    cleaning_markdown,
    generalization_markdown,
    main_markdown,
    mean_sd,
    models_markdown,
    runs_markdown,
    spread_markdown,
    thresholds_markdown,
)
from dfdetect.evaluation.run_summary import run_summary_markdown, write_run_summary
from dfdetect.layout import CALIBRATION_FILE, REPORT_FILES, SCORING_FILE, ResultFiles, RulePaths

INTRO_TEXT = (
    "Video-level metrics on the test split, sorted by mean test log loss (the competition's metric). "
    "Each figure is the mean ± sample standard deviation over the model's runs, with the number of runs "
    "(`repeats`: the same settings with seeds seed, seed+1, ...; sd – for a single run); run 0 is the "
    "model to deploy. ROC AUC and log loss come from probabilities; calibrated log loss from the scores "
    "calibrated on the validation split. *Models* gives run 0's test ROC AUC with its 95% interval "
    "(resampling families)."
)
THRESHOLDS_TEXT = (
    "Run 0, at 0.5 and at the threshold chosen on the validation split (maximum "
    "balanced accuracy), which evaluation sets also use."
)

SPREAD_TEXT = (
    "The main table's figures are the mean ± sample standard deviation over each model's runs "
    "(`repeats`: the same settings with seeds seed, seed+1, ...), with the number of runs. A difference "
    "to the baseline (`evaluation.baseline`, else the first model) is *beyond the spread* when the two "
    "mean ± sd ranges do not overlap (the difference is larger than the two sds added): a rough screen "
    "with few runs, not a significance test; *within the spread* means these runs cannot tell the two apart."
)


CALIBRATION_TEXT = (
    "Each model's video scores are calibrated on its validation split (`evaluation.calibration`: temperature "
    "or Platt scaling, `models/{model}/calibration.json`; `dfdetect predict` applies it unless `--raw`); an "
    "ensemble combines its members' calibrated scores. Log loss and expected calibration error (ECE) of the "
    "raw → calibrated scores, run 0. Calibration keeps the order of the scores: ROC AUC does not change."
)


GENERALIZATION_TEXT = (
    "How each model (run 0) does on data unlike its training data: ROC AUC on each evaluation set (never "
    "trained on; threshold-free) and its gap to the model's own test split, ROC AUC per manipulation "
    "(that kind's fakes against all the reals) where the metadata names it, and the mean ROC AUC of the "
    "test split over every DeeperForensics-1.0 perturbation level (7 kinds x 5 levels)."
)


def best_model(table: pd.DataFrame) -> pd.Series | None:
    """The model with the lowest mean test log loss (the table is sorted by it), or None without metrics."""
    scored = table[table["log_loss_mean"].notna()]
    return None if scored.empty else scored.iloc[0]


def predict_command(row: pd.Series, model_files: Mapping[str, str | Path]) -> str | None:
    """The ``dfdetect predict`` command that scores as the row's model (or ensemble) was evaluated;
    None when its model file is not known."""
    if row["arch"] == ENSEMBLE_ARCH:  # its members' run-0 models, combined as the ensemble combines them
        members = str(row["backbone"]).split("+")
        if not all(member in model_files for member in members):
            return None
        models = " ".join(f"--model {model_files[member]}" for member in members)
        return f"dfdetect predict {models} --combine {row['frames']} INPUT... --out scores.csv"
    if row["model"] not in model_files:
        return None
    return f"dfdetect predict --model {model_files[row['model']]} INPUT... --out scores.csv"


def best_model_line(table: pd.DataFrame, model_files: Mapping[str, str | Path] | None = None) -> str:
    best = best_model(table)
    if best is None:
        return "No model has metrics yet."
    line = (
        f"Best by mean test log loss: **{best['model']}** (log loss {mean_sd(best, 'log_loss')}, calibrated "
        f"{mean_sd(best, 'log_loss_calibrated')}; ROC AUC {mean_sd(best, 'roc_auc')})."
    )
    model_file = (model_files or {}).get(best["model"])
    if model_file is not None:
        line += (
            f" The model to deploy: `{model_file}` (run 0, with `{SCORING_FILE}` and `{CALIBRATION_FILE}` beside "
            "it: the frames, aggregation and image size it was evaluated with and its calibration, which "
            "`dfdetect predict` applies)."
        )
    elif best["arch"] == ENSEMBLE_ARCH:
        members = ", ".join(f"`{member}`" for member in str(best["backbone"]).split("+"))
        line += f" An ensemble: deploy its members' run-0 models ({members}), scored together as below."
    return line


def next_steps_markdown(table: pd.DataFrame, model_files: Mapping[str, str | Path] | None = None) -> str:
    best = best_model(table)
    command = predict_command(best, model_files or {}) if best is not None else None
    steps = []
    if command is not None:
        steps.append(
            "Score new videos (mp4, face folders, face-batch zips, single face crops) as evaluation scored the "
            f"test split: `{command}`."
        )
    steps += [
        "Look at the HTML report (`make report`, then open `report.html`): the ROC curves of every model on "
        "each dataset, and per model its training history, plots, calibration and robustness.",
        "Before trusting a difference between two models, read *Spread over runs*: with one run, or runs "
        "whose ranges overlap, the comparison cannot tell them apart.",
        "Before trusting a model on other data, read *Generalization* below: a test split holds fakes from the "
        "same generators as the training data; evaluation sets and perturbations do not. With few REAL test "
        "videos the intervals are wide: read them before the point values.",
        "Real data: `snakemake --cores all --configfile config/real.yaml` (README, *Your own data*).",
    ]
    return "\n".join(f"- {step}" for step in steps)


def comparison_sections(
    table: pd.DataFrame,
    missing: list[str],
    model_files: Mapping[str, str | Path] | None = None,
    runs: pd.DataFrame | None = None,
    baseline: str | None = None,
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
        "## Spread over runs",
        SPREAD_TEXT,
        spread_markdown(table, baseline),
        *(["## Generalization", GENERALIZATION_TEXT, generalization] if generalization else []),
        "## Calibration",
        CALIBRATION_TEXT,
        calibration_markdown(table),
        "## Models",
        models_markdown(table),
        "## Decisions at a threshold",
        THRESHOLDS_TEXT,
        thresholds_markdown(table),
        *(["## Each run", runs_markdown(runs)] if runs is not None else []),
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
    runs: pd.DataFrame | None = None,
    runs_path: str | Path | None = None,
    baseline: str | None = None,
) -> None:
    """``comparison.csv`` (the table as is), ``comparison_runs.csv`` (``runs``, one row per run, when
    given) and ``comparison.md`` (formatted: ``comparison_sections``, the data summary and, when
    given, the run summary: what was ingested, kept and dropped)."""
    with atomic_path(csv_path, suffix=".csv") as temporary:
        table.to_csv(temporary, index=False)
    if runs is not None and runs_path is not None:
        with atomic_path(runs_path, suffix=".csv") as temporary:
            runs.to_csv(temporary, index=False)
    sections = comparison_sections(table, missing, model_files, runs, baseline)
    sections += data_sections(clean_summary, split_summary, run_summary)
    atomic_write_text(md_path, "\n\n".join(sections) + "\n")


@dataclass(frozen=True)
class ReportPaths(RulePaths):
    """Every file the report rule writes; the field names are its output names."""

    csv: Path
    runs: Path  # one row per run of every model and ensemble
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
    runs: pd.DataFrame | None = None,
    baseline: str | None = None,
) -> None:
    """Everything the report rule writes: comparison.csv/.md, comparison_runs.csv, the run summary,
    and the pages and figure of the HTML report (comparison, data, configuration, every model's ROC
    curves)."""
    write_report(
        table,
        missing,
        clean_summary,
        split_summary,
        paths.csv,
        paths.markdown,
        run_summary,
        files.model_files,
        runs,
        paths.runs,
        baseline,
    )
    write_run_summary(run_summary, paths.summary)
    comparison = comparison_sections(table, missing, files.model_files, runs, baseline)
    atomic_write_text(paths.html, html_page("Model comparison", comparison))
    data = ["# Data", *data_sections(clean_summary, split_summary, run_summary)]
    atomic_write_text(paths.summary_html, html_page("Data", data))
    atomic_write_text(paths.config, config_page(config))
    plot_roc_comparison(roc_panels(files), paths.roc, "ROC curves of every model (run 0)")


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
    "`loader_workers`, `loader_threads`) are left out: they change no result. Every key is described in "
    "`dfdetect/config.schema.yaml`."
)


def config_page(config: Mapping[str, Any]) -> str:
    import yaml

    listing = html.escape(yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False))
    return html_page("Configuration", ["# Configuration", CONFIG_TEXT], after=f"<pre>{listing}</pre>")
