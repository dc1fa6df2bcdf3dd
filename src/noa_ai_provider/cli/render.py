"""Output of the ``noa-registry`` command: rich tables on a terminal; plain aligned columns when piped (one line per
row, never wrapped, no trailing blanks: ``grep``, ``cut`` and ``head`` work); JSON with ``--json``.

rich is imported only to draw on a terminal: piped output and JSON are written by this module alone, and
``--version`` and ``--help`` import nothing of it (start-up time, see bench/bench_cli.py).

Whether stdout is a terminal follows rich's rules: ``TTY_COMPATIBLE=1``/``0`` decide; else ``FORCE_COLOR`` set to
anything non-empty forces a terminal and set empty rules one out; else ``isatty()``. ``NO_COLOR`` (non-empty) goes
further than rich, which would still send bold and italics: no colour nor style escape codes at all.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "Column",
    "Styled",
    "colours_off",
    "console",
    "error",
    "grid",
    "is_terminal",
    "line",
    "money",
    "print_json",
    "styled",
    "table",
]

_MAX_ERROR = 600
"""An error message longer than this is cut (a whole catalogue inside an error helps nobody)."""

_PIPED_WIDTH = 10_000
"""The width of the rich console when piped (for the commands that print rich renderables): no line is wrapped."""

_GAP = 2
"""Blanks between two columns (on a terminal: two cells' padding collapsed, and the rule's blank)."""

_console: Any = None


def is_terminal() -> bool:
    """Whether stdout gets the terminal layout (rich, boxed, coloured, fitted to the width): rich's rules (see the
    module's docstring), decided without importing rich."""
    environ = os.environ
    compatible = environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    try:
        return sys.stdout.isatty()
    except ValueError:  # closed
        return False


def colours_off() -> bool:
    """Whether output carries no colour nor style: not a terminal (see :func:`is_terminal`), or ``NO_COLOR`` set
    (to anything non-empty), whatever ``FORCE_COLOR`` says."""
    return bool(os.environ.get("NO_COLOR")) or not is_terminal()


def console() -> Any:
    """The rich console on stdout (made on first use): on a terminal, rich's own (without colours or styles under
    ``NO_COLOR``); piped, a very wide one that never wraps and sends no escape codes."""
    global _console
    if _console is None:
        from rich.console import Console

        if is_terminal():
            plain = bool(os.environ.get("NO_COLOR"))
            _console = Console(highlight=False, color_system=None if plain else "auto", force_terminal=True)
        else:
            _console = Console(
                highlight=False, soft_wrap=True, width=_PIPED_WIDTH, color_system=None, force_terminal=False
            )
        _console.on_broken_pipe = _broken_pipe  # rich would exit 1; main() ends every closed pipe the same way
    return _console


def _broken_pipe() -> None:
    raise BrokenPipeError


@dataclass(frozen=True, slots=True)
class Styled:
    """Text with a rich style, applied on a terminal only (a table cell or a line)."""

    text: str
    style: str

    def __str__(self) -> str:
        return self.text


def styled(text: str, style: str) -> Styled:
    """``text`` in ``style`` on a terminal (never read as markup)."""
    return Styled(text, style)


def line(text: str = "", style: str | None = None) -> None:
    """One line of text as it is (never read as rich markup), in ``style`` on a terminal."""
    if not is_terminal():
        sys.stdout.write(text + "\n")
        return
    from rich.text import Text

    console().print(Text(text, style=style or ""))


def money(value: Decimal | None) -> str:
    """A Decimal exactly as text, without exponent or trailing zeros ("0" for zero; "" for None).

    >>> money(Decimal("0.02025000")), money(Decimal("2.5E-7")), money(Decimal("1E+2")), money(Decimal("-0"))
    ('0.02025', '0.00000025', '100', '0')
    """
    if value is None:
        return ""
    return f"{value.normalize():f}" if value else "0"


@dataclass(frozen=True, slots=True)
class Column:
    """A column of :func:`table`: its header; ``right``-justified (numbers); ``wrap``: its text may wrap at spaces
    on a terminal (others keep each cell on one line: keys, numbers); its ``style`` on a terminal; ``drop``: a
    column with ``drop > 0`` is left out when the terminal is too narrow for the table, the highest first;
    ``min_width`` on a terminal."""

    header: str
    right: bool = False
    wrap: bool = False
    style: str = ""
    drop: int = 0
    min_width: int | None = None


Cell = str | Styled | None
"""A table cell: text (never read as markup), :class:`Styled` text, or ``None`` (empty)."""


def table(
    title: str | None,
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[Cell]],
    *,
    note: str | None = None,
) -> None:
    """Print a table. On a terminal: a bold title, a ruled header, the ``wrap`` columns wrapped to fit the width;
    columns with ``drop`` left out, highest first, while the table does not fit, and a line saying which. Piped: the
    title on a line of its own, then plain aligned columns two blanks apart, every row on one line. ``note`` follows
    the table (a footnote)."""
    if not is_terminal():
        _plain_table(title, _specs(columns), [[_text(v) for v in row] for row in rows], note)
        return
    from rich.text import Text

    out = console()
    if title:
        out.print(Text(title, style="bold"))
    out.print(grid(columns, rows))
    if note:
        out.print(Text(note, style="dim"))


def _text(value: Cell) -> str:
    return "" if value is None else str(value)


def _width(text: str) -> int:
    """Terminal cells taken by ``text``: East Asian wide characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _plain_table(title: str | None, specs: Sequence[Column], cells: Sequence[Sequence[str]], note: str | None) -> None:
    widths = [max(_width(text) for text in (spec.header, *(row[i] for row in cells))) for i, spec in enumerate(specs)]

    def aligned(texts: Sequence[str]) -> str:
        parts = []
        for spec, width, text in zip(specs, widths, texts, strict=True):
            pad = " " * (width - _width(text))
            parts.append(pad + text if spec.right else text + pad)
        return (" " * _GAP).join(parts).rstrip()

    text = "\n".join([aligned([s.header for s in specs]), *(aligned(row) for row in cells)])
    sys.stdout.write((f"{title}\n" if title else "") + text + "\n" + (f"{note}\n" if note else ""))


def grid(columns: Sequence[Column | str], rows: Iterable[Sequence[Cell]]) -> Any:
    """The terminal layout of a table (see :func:`table`) as a rich renderable: the table, then a line naming the
    columns left out for want of width, if any."""
    from rich.console import Group
    from rich.text import Text

    out = console()
    specs = _specs(columns)
    cells = [[_rich_text(v) for v in row] for row in rows]
    keep = list(range(len(specs)))
    least = [_least_width(spec, [row[i].plain for row in cells]) for i, spec in enumerate(specs)]
    wrap_all = False
    while sum(least[i] for i in keep) + _GAP * (len(keep) - 1) > out.width:
        droppable = [i for i in keep if specs[i].drop > 0]
        if not droppable:  # the last resort: every column may wrap (rich would crop the others)
            wrap_all = True
            break
        keep.remove(max(droppable, key=lambda i: specs[i].drop))
    fitted = _grid(specs, cells, keep, wrap_all=wrap_all)
    dropped = [specs[i].header for i in range(len(specs)) if i not in keep]
    if not dropped:
        return fitted
    hint = Text(f"(left out for want of width: {', '.join(dropped)}; --json has everything)", style="dim")
    return Group(fitted, hint)


def _specs(columns: Sequence[Column | str]) -> list[Column]:
    return [c if isinstance(c, Column) else Column(c, wrap=True) for c in columns]


def _rich_text(value: Cell) -> Any:
    from rich.text import Text

    if isinstance(value, Styled):
        return Text(value.text, style=value.style)
    return Text("" if value is None else str(value))


def _least_width(spec: Column, texts: Sequence[str]) -> int:
    """The narrowest a column can be on a terminal: its widest cell, or for a ``wrap`` column its longest word."""
    texts = [spec.header, *texts]
    if spec.wrap:
        widest = max((_width(word) for text in texts for word in text.split()), default=0)
        return max(widest, spec.min_width or 0)
    return max(_width(part) for text in texts for part in (text.splitlines() or [""]))


def _grid(specs: Sequence[Column], cells: Sequence[Sequence[Any]], keep: Sequence[int], *, wrap_all: bool) -> Any:
    from rich import box
    from rich.table import Table

    made = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        header_style="bold",
    )
    for i in keep:
        spec = specs[i]
        made.add_column(
            spec.header,
            justify="right" if spec.right else "left",
            style=spec.style,
            no_wrap=not (spec.wrap or wrap_all),
            overflow="fold",
            min_width=spec.min_width,
        )
    for row in cells:
        made.add_row(*(row[i] for i in keep))
    return made


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        # As pydantic writes them (and export_to_json): UTC as "Z".
        text = value.isoformat()
        return text[:-6] + "Z" if value.utcoffset() == UTC.utcoffset(None) and text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout: Decimals as exact strings (no exponent, no trailing zeros), datetimes
    as ISO 8601 (UTC as ``Z``), dates as ``YYYY-MM-DD``. Keys keep their order."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def error(message: str) -> None:
    """One line on stderr, cut to a sane length (whitespace and newlines folded)."""
    text = " ".join(str(message).split())
    if len(text) > _MAX_ERROR:
        text = text[: _MAX_ERROR - 40] + f" ... ({len(text):,} characters in all)"
    sys.stderr.write(f"noa-registry: {text}\n")
