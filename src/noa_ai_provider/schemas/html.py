"""HTML tables for notebooks (``_repr_html_``): plain ``<table>`` markup, every value escaped. Standard library only,
so the schemas can use it; no styling beyond what Jupyter gives tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

__all__ = ["cell", "fields_table", "per_million", "table"]


def cell(value: Any) -> str:
    """A value as escaped text: ``None`` as an empty cell, a Decimal exactly (no exponent), an int with thousands
    separators."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return escape(f"{value.normalize():f}" if value else "0")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return escape(f"{value:g}")
    return escape(str(value))


def per_million(price: Decimal | None, per: int) -> Decimal | None:
    """A price per ``per`` tokens, per million tokens."""
    return None if price is None else price * 1_000_000 / per


def table(
    caption: str | None, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()
) -> str:
    """An HTML table: ``caption`` (optional), a header row, and ``rows`` (each value through :func:`cell`);
    columns whose indexes are in ``right`` are right-aligned (numbers)."""
    aligned = set(right)

    def td(index: int, value: Any, tag: str = "td") -> str:
        style = ' style="text-align:right"' if index in aligned else ' style="text-align:left"'
        return f"<{tag}{style}>{cell(value)}</{tag}>"

    parts = ["<table>"]
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(td(i, h, "th") for i, h in enumerate(headers)) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(td(i, v) for i, v in enumerate(row)) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def fields_table(caption: str | None, pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of ``(name, value)`` pairs; pairs whose value is ``None`` are left out."""
    return table(caption, ("field", "value"), [(name, value) for name, value in pairs if value is not None])
