"""The robustness plot: ROC AUC against perturbation level, one line per perturbation.

Drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state), like the plots of
:mod:`dfdetect.metrics`. The input is the ``robustness.csv`` table (perturbation, level,
roc_auc, ...); the clean (unperturbed) AUC is the reference line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfdetect.metrics import new_figure, save_figure, undefined_plot

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


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
        axes.plot(rows["level"], rows["roc_auc"], marker=_MARKERS[number % len(_MARKERS)], linewidth=1.5,
                  label=str(name))
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
