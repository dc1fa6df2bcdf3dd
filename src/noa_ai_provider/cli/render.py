"""Output of the ``noa-registry`` command: rich tables on a terminal, the same tables without borders or wrapping
when piped (one line per row: grep and head work), JSON with ``--json``. rich is imported here, when a command
first prints, never by ``--version`` or ``--help``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["console", "error", "money", "print_json", "table"]

_MAX_ERROR = 600
"""An error message longer than this is cut (a whole catalogue inside an error helps nobody)."""

_console: Any = None


def console() -> Any:
    """The rich console on stdout: colours only on a terminal without ``NO_COLOR`` (rich's own rules, also
    ``FORCE_COLOR``); when piped, no wrapping (a very wide console) and no markup surprises."""
    global _console
    if _console is None:
        from rich.console import Console

        terminal = sys.stdout.isatty()
        _console = Console(highlight=False, soft_wrap=not terminal, width=None if terminal else 10_000)
        _console.on_broken_pipe = _broken_pipe  # rich would exit 1; main() ends every closed pipe the same way
    return _console


def _broken_pipe() -> None:
    raise BrokenPipeError


def money(value: Decimal | None) -> str:
    """A Decimal exactly as text, without exponent or trailing zeros ("0" for zero; "" for None)."""
    if value is None:
        return ""
    return f"{value.normalize():f}" if value else "0"


def table(
    title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()
) -> None:
    """Print a table: boxed on a terminal, plain aligned columns when piped."""
    from rich import box
    from rich.table import Table

    out = console()
    terminal = sys.stdout.isatty()
    grid = Table(
        title=title if terminal else None,
        box=box.SIMPLE_HEAD if terminal else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if terminal else "",
    )
    for index, header in enumerate(headers):
        grid.add_column(header, justify="right" if index in right else "left", no_wrap=not terminal)
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    if title and not terminal:
        out.print(title, markup=False)
    out.print(grid)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout; Decimals as exact strings, dates as ISO 8601."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def error(message: str) -> None:
    """One line on stderr, cut to a sane length."""
    text = " ".join(str(message).split())
    if len(text) > _MAX_ERROR:
        text = text[: _MAX_ERROR - 40] + f" ... ({len(text):,} characters in all)"
    sys.stderr.write(f"noa-registry: {text}\n")


def colours_off() -> bool:
    """Whether output carries no colour (piped, or NO_COLOR set)."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
