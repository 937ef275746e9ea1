"""Figure plumbing every stage shares: a ``matplotlib.figure.Figure`` on the Agg canvas (never
pyplot's global state, so no interactive backend is touched and nothing leaks between plots),
written atomically (``dfdetect.atomic``). Each stage draws its own figures (``data.figures``,
``training.figures``, ``evaluation.plots``); the numbers come from its own modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dfdetect.atomic import atomic_path


def new_figure(size: tuple[float, float] = (5.5, 4.5)) -> tuple[Figure, Any]:
    figure = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def new_panels(count: int, size: tuple[float, float]) -> tuple[Figure, list[Any]]:
    """A figure of ``count`` panels side by side, sharing the y axis."""
    figure = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, count, sharey=True, squeeze=False)[0]
    return figure, list(axes)


def save_figure(figure: Figure, path: str | Path) -> None:
    """PNG under a temporary name, renamed into place: a killed job leaves no half-written picture."""
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png")


def undefined_plot(path: str | Path, title: str, message: str) -> None:
    """A PNG that says why the plot cannot be drawn, so the report still has a picture to show."""
    figure, axes = new_figure()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    save_figure(figure, path)
