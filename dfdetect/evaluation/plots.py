"""The evaluation figures: ROC and precision-recall curves, confusion matrix, score histograms
and robustness curves. The numbers come from ``dfdetect.evaluation.metrics``; the figure plumbing
from ``dfdetect.figures``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay, confusion_matrix

from dfdetect.evaluation.metrics import CLASS_NAMES, expected_calibration_error, labels_and_scores, one_class_reason
from dfdetect.figures import new_figure, new_panels, save_figure, undefined_plot

ROBUSTNESS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def class_counts_text(labels: np.ndarray) -> str:
    return f"{int((labels == 0).sum())} REAL, {int((labels == 1).sum())} FAKE videos"


def plot_roc(labels: Any, scores: Any, path: str | Path, title: str) -> None:
    labels, scores = labels_and_scores(labels, scores)
    reason = one_class_reason(labels)
    if reason is not None:
        undefined_plot(path, title, f"ROC curve undefined:\n{reason}")
        return
    figure, axes = new_figure()
    RocCurveDisplay.from_predictions(labels, scores, ax=axes, name="model", plot_chance_level=True)
    axes.set_xlabel("False positive rate (REAL called FAKE)")
    axes.set_ylabel("True positive rate (FAKE caught)")
    axes.set_title(f"{title}\n{class_counts_text(labels)}")
    save_figure(figure, path)


def plot_precision_recall(labels: Any, scores: Any, path: str | Path, title: str) -> None:
    labels, scores = labels_and_scores(labels, scores)
    if not labels.any():
        undefined_plot(path, title, f"Precision-recall curve undefined:\nno FAKE video among {len(labels)}")
        return
    figure, axes = new_figure()
    PrecisionRecallDisplay.from_predictions(labels, scores, ax=axes, name="model", plot_chance_level=True)
    axes.set_xlabel("Recall (FAKE caught)")
    axes.set_ylabel("Precision (calls of FAKE that are right)")
    axes.set_title(f"{title}\n{class_counts_text(labels)}")
    save_figure(figure, path)


def plot_confusion_matrix(labels: Any, scores: Any, threshold: float, path: str | Path, title: str) -> None:
    """Counts per cell, coloured by the share of the true class (~88% of DFDC videos are FAKE, so
    raw counts would paint the REAL row pale whatever the model does)."""
    labels, scores = labels_and_scores(labels, scores)
    figure, axes = new_figure((4.8, 4.4))
    predicted = (scores >= threshold).astype(np.int64)
    counts = confusion_matrix(labels, predicted, labels=[0, 1])
    per_class = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, per_class, out=np.zeros(counts.shape), where=per_class > 0)
    display = ConfusionMatrixDisplay(shares, display_labels=["REAL", "FAKE"])
    display.plot(ax=axes, include_values=False, colorbar=False, cmap="Blues", im_kw={"vmin": 0, "vmax": 1})
    for (row, column), count in np.ndenumerate(counts):
        share = f"\n{shares[row, column]:.0%} of {CLASS_NAMES[row]}" if per_class[row, 0] else ""
        axes.text(
            column,
            row,
            f"{count}{share}",
            ha="center",
            va="center",
            fontsize=11,
            color="white" if shares[row, column] > 0.5 else "black",
        )
    axes.set_xlabel(f"Predicted (FAKE when p_fake >= {threshold:.3g})")
    axes.set_ylabel("True label")
    axes.set_title(f"{title}\n{class_counts_text(labels)}")
    save_figure(figure, path)


def plot_score_histograms(
    labels: Any, scores: Any, path: str | Path, title: str, thresholds: dict[str, float] | None = None
) -> None:
    """Video scores per class on shared bins; ``thresholds`` ({"validation threshold": 0.6}) as lines,
    labelled with their name and value ("validation threshold 0.6")."""
    labels, scores = labels_and_scores(labels, scores)
    figure, axes = new_figure()
    bins = np.linspace(0.0, 1.0, 21)
    for label, color in ((0, "tab:blue"), (1, "tab:red")):
        class_scores = scores[labels == label]
        if len(class_scores):
            axes.hist(
                class_scores, bins=bins, alpha=0.55, color=color, label=f"{CLASS_NAMES[label]} (n={len(class_scores)})"
            )
    for (name, value), style in zip((thresholds or {}).items(), ("--", ":", "-.", (0, (5, 1)))):
        axes.axvline(value, color="black", linestyle=style, linewidth=1.2, label=f"{name} {value:.3g}")
    axes.set_xlim(0, 1)
    axes.set_xlabel("Video score p_fake")
    axes.set_ylabel("Videos")
    axes.set_title(f"{title}\n{class_counts_text(labels)}")
    axes.legend(loc="best", fontsize=9)
    save_figure(figure, path)


def plot_roc_comparison(panels: Mapping[str, Mapping[str, tuple[Any, Any]]], path: str | Path, title: str) -> None:
    """ROC curves of several models overlaid, one panel per dataset (the test split, each evaluation set).

    ``panels``: dataset title -> scorer name (a model, or anything else with scores) -> (labels,
    scores). A scorer with one class in a dataset is named in that panel instead of drawn.
    """
    panels = {name: curves for name, curves in panels.items() if curves}
    if not panels:
        undefined_plot(path, title, "No model has predictions yet")
        return
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    # square panels (RocCurveDisplay sets an equal aspect): tall enough for the two-line title and the x label
    figure = Figure(figsize=(4.6 * columns, 5.0 * rows + 0.5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    for number, (dataset, curves) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(rows, columns, number)
        undefined, counts = [], ""
        for scorer, (labels, scores) in curves.items():
            labels, scores = labels_and_scores(labels, scores)
            if one_class_reason(labels) is not None:
                undefined.append(scorer)
                continue
            counts = class_counts_text(labels)
            RocCurveDisplay.from_predictions(labels, scores, ax=axes, name=scorer)
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.0, label="chance (AUC 0.5)")
        if undefined:
            axes.text(0.98, 0.02, f"one class only: {', '.join(undefined)}", ha="right", va="bottom", fontsize=8)
        axes.set_xlabel("False positive rate (REAL called FAKE)")
        axes.set_ylabel("True positive rate (FAKE caught)")
        axes.set_title(f"{dataset}\n{counts}" if counts else dataset, fontsize=10)
        axes.legend(loc="lower right", fontsize=8)
    figure.suptitle(title)
    save_figure(figure, path)


def plot_reliability(
    panels: Mapping[str, tuple[Any, Any, Any]], bins: int, path: str | Path, title: str, calibrated_name: str
) -> None:
    """Reliability diagrams side by side, one per ``panels`` entry (name -> labels, raw scores,
    calibrated scores): share of FAKE videos against the mean score in ``bins`` equal-width bins,
    raw and calibrated, with each curve's expected calibration error in the legend."""
    figure, axes_list = new_panels(len(panels), (4.6 * len(panels), 4.6))
    for axes, (name, (labels, raw, calibrated)) in zip(axes_list, panels.items()):
        labels, raw = labels_and_scores(labels, raw)
        _, calibrated = labels_and_scores(labels, calibrated)
        reason = one_class_reason(labels)
        axes.set_title(f"{name}: {class_counts_text(labels)}", fontsize=10)
        if reason is not None:
            axes.text(0.5, 0.5, f"undefined:\n{reason}", ha="center", va="center", wrap=True, fontsize=9)
            continue
        for scores, label, style in ((raw, "raw", "s-"), (calibrated, calibrated_name, "o-")):
            ece = expected_calibration_error(labels, scores, bins)
            CalibrationDisplay.from_predictions(
                labels,
                scores,
                n_bins=bins,
                strategy="uniform",
                ax=axes,
                name=f"{label} (ECE {ece:.3f})",
                ref_line=label == "raw",
                marker=style[0],
            )
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("Mean video score in the bin")
        axes.set_ylabel("Share of FAKE videos in the bin")
        axes.legend(loc="upper left", fontsize=8)
    figure.suptitle(title)
    save_figure(figure, path)


def plot_robustness(robustness: pd.DataFrame, path: str | Path, title: str, clean_auc: float | None = None) -> None:
    """AUC (y) against level (x), a line per perturbation in the table's order; ``clean_auc`` dashed.

    Rows at level 0 (unperturbed) are drawn where the table holds them; an undefined AUC (None or
    NaN) leaves a gap. A table without any defined AUC still gives a PNG that says so.
    """
    missing = [column for column in ("perturbation", "level", "roc_auc") if column not in robustness.columns]
    if missing:
        raise ValueError(f"robustness table lacks column(s) {', '.join(missing)}")
    aucs = pd.to_numeric(robustness["roc_auc"], errors="coerce")
    if aucs.isna().all():
        undefined_plot(path, title, "Robustness curve undefined:\nno perturbed AUC is defined (one class?)")
        return
    figure, axes = new_figure((6.5, 4.5))
    table = robustness.assign(roc_auc=aucs)
    for number, (name, rows) in enumerate(table.groupby("perturbation", sort=False)):
        rows = rows.sort_values("level")
        axes.plot(
            rows["level"],
            rows["roc_auc"],
            marker=ROBUSTNESS_MARKERS[number % len(ROBUSTNESS_MARKERS)],
            linewidth=1.5,
            label=str(name),
        )
    if clean_auc is not None and np.isfinite(clean_auc):
        axes.axhline(clean_auc, color="black", linestyle="--", linewidth=1.2, label=f"clean ({clean_auc:.3f})")
    axes.axhline(0.5, color="grey", linestyle=":", linewidth=1.0, label="chance (0.5)")
    levels = sorted(int(level) for level in table["level"].unique())
    axes.set_xticks(levels)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("Perturbation level (DeeperForensics-1.0; 0 = none, 5 = strongest)")
    axes.set_ylabel("ROC AUC")
    axes.set_title(title)
    axes.legend(loc="lower left", fontsize=8, ncol=2)
    save_figure(figure, path)
