"""Markdown for the reports: cells for missing values, numbers, GitHub-flavoured tables, and the same
markdown rendered as an HTML page (Python-Markdown) for the page of ``snakemake --report``."""

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


# The pages are shown inside the report's page: plain, readable tables that fit its width.
PAGE_STYLE = """
body { font-family: system-ui, "Segoe UI", Roboto, sans-serif; font-size: 14px; margin: 12px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 22px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: #f6f6f6; padding: 10px; border: 1px solid #ddd; }
"""


def html_page(title: str, sections: list[str], after: str = "") -> str:
    """A self-contained HTML page of markdown ``sections`` (tables included), then raw HTML ``after``."""
    import html

    import markdown

    body = markdown.markdown("\n\n".join(sections), extensions=["tables"])
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{PAGE_STYLE}</style></head>\n<body>\n{body}\n{after}\n</body></html>\n"
    )
