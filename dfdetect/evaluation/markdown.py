"""Markdown for the reports: cells for missing values, numbers, and GitHub-flavoured tables."""

from __future__ import annotations

from typing import Any

import pandas as pd


def is_missing(value: Any) -> bool:
    """None, NaN or pd.NA (the nullable integer columns' missing value)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def number(value: Any, digits: int = 3) -> str:
    return "–" if is_missing(value) else f"{float(value):.{digits}f}"


def text(value: Any) -> str:
    if is_missing(value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (no tabulate needed in light environments)."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])
