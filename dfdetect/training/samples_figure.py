"""The training-samples figure: what a model's recipe feeds it, 16 inputs with their labels.

Written by every train job (``models/{model}/training_samples.png``) from the training loader's
``preview``: the first inputs of the first epoch after augmentation, exactly as the model gets
them. Self-blended fakes are marked "SBI FAKE" and show the outline of their blend mask.
Uses matplotlib's object-oriented API only (no pyplot state), so it is safe in any process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

LABEL_COLOURS = {"REAL": "tab:green", "FAKE": "tab:red", "SBI FAKE": "tab:orange"}


def sample_caption(label: float, sbi: bool) -> str:
    if sbi:
        return "SBI FAKE"
    return "FAKE" if label > 0.5 else "REAL"


def plot_training_samples(preview: Mapping[str, Any], path: str | Path, title: str, columns: int = 4) -> Path:
    """Write the grid of ``preview`` (``FrameDataset.preview``) to ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    frames = np.asarray(preview["frames"])
    count = len(frames)
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(2.2 * columns, 2.4 * rows + 0.4))
    FigureCanvasAgg(figure)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    video_ids = preview.get("video_ids")
    for position, axes in enumerate(axes_grid.ravel()):
        axes.set_axis_off()
        if position >= count:
            continue
        caption = sample_caption(float(preview["labels"][position]), bool(preview["sbi"][position]))
        axes.imshow(frames[position], interpolation="nearest")
        outline = preview["outlines"][position]
        if outline is not None and np.any(outline):
            axes.contour(np.asarray(outline, dtype=float), levels=[0.5], colors="yellow", linewidths=1.0)
        name = f"\n{video_ids[position]}" if video_ids is not None else ""
        axes.set_title(f"{caption}{name}", fontsize=8, color=LABEL_COLOURS[caption])
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
