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
    classes = ((0, "REAL", "tab:blue"), (1, "FAKE", "tab:red"))
    counts = [videos.loc[videos["label"] == label, "n_frames"] for label, _, _ in classes]
    # Side by side, not overlaid: the FAKE bars (about 88% of DFDC) would hide the REAL ones.
    axes.hist(
        counts,
        bins=bins,
        label=[f"{name} (n={len(values)})" for (_, name, _), values in zip(classes, counts)],
        color=[colour for _, _, colour in classes],
    )
    if frame_bounds is not None:
        for bound in frame_bounds:
            axes.axvline(bound, color="black", linestyle="--", linewidth=1)
        axes.text(frame_bounds[0], axes.get_ylim()[1] * 0.95, " kept range", va="top")
    axes.set_xlabel("face image files per video (n_frames)")
    axes.set_ylabel("videos")
    axes.set_title("Face files per video")
    axes.legend()
    save_figure(figure, path)
