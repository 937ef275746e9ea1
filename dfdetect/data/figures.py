"""The data stage's figure: face files per video by class, with the cleaning bounds (manifest rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfdetect.figures import new_figure, save_figure


def plot_n_frames_histogram(
    videos: pd.DataFrame, path: str | Path, frame_bounds: tuple[int, int] | None = None
) -> None:
    """The study's first figure: how many face files each video has, by class."""
    figure, axes = new_figure((8, 4.5))
    upper = max(int(videos["n_frames"].max()), 1)
    bins = np.linspace(0, upper + 1, min(60, upper + 2))
    for label, name, colour in ((0, "REAL", "tab:blue"), (1, "FAKE", "tab:red")):
        counts = videos.loc[videos["label"] == label, "n_frames"]
        axes.hist(counts, bins=bins, alpha=0.6, label=f"{name} (n={len(counts)})", color=colour)
    if frame_bounds is not None:
        for bound in frame_bounds:
            axes.axvline(bound, color="black", linestyle="--", linewidth=1)
        axes.text(frame_bounds[0], axes.get_ylim()[1] * 0.95, " kept range", va="top")
    axes.set_xlabel("face image files per video (n_frames)")
    axes.set_ylabel("videos")
    axes.set_title("Face files per video")
    axes.legend()
    save_figure(figure, path)
