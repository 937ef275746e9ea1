"""The training stage's figures: the history (loss and accuracy per epoch) and the training
samples, what a model's recipe feeds it (16 inputs with their labels).

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
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dfdetect.figures import save_figure

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


def plot_history(history: pd.DataFrame, fake_share: float, path: str | Path, title: str) -> None:
    """Loss and accuracy per epoch, with the accuracy of always answering FAKE (as in the study)."""
    figure = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = history["epoch"] + 1
    loss_axes.plot(epochs, history["loss"], "o-", label="train")
    loss_axes.plot(epochs, history["val_loss"], "o-", label="validation")
    loss_axes.set(xlabel="epoch", ylabel="binary cross-entropy (class-weighted in training)", title="loss")
    accuracy_axes.plot(epochs, history["accuracy"], "o-", label="train")
    accuracy_axes.plot(epochs, history["val_accuracy"], "o-", label="validation")
    accuracy_axes.axhline(fake_share, color="grey", linestyle="--", label=f"always FAKE ({fake_share:.2f})")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for axes in (loss_axes, accuracy_axes):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    save_figure(figure, path)
