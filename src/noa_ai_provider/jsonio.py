"""Strict JSON reading and exact JSON writing, shared by config files, snapshots and imports.

The standard ``json`` module accepts ``NaN``/``Infinity``, keeps the last of duplicate keys and turns ``0.1`` into
a float. Here numbers with a fraction or exponent become :class:`~decimal.Decimal` (prices stay exact), the
non-finite constants and duplicate keys are errors, and every error names the source and the line and column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import ConfigError, PersistenceError

__all__ = ["MAX_DEPTH", "dumps", "loads", "read_text", "read_text_and_stat"]

MAX_DEPTH = 64
"""Deeper nesting than this is refused: no document of ours needs it, and it guards the recursion."""


class _Reject(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _Reject(f"{name} is not allowed (numbers must be finite)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # built in C; a repeated key leaves it shorter than the pairs
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Reject(f"duplicate key {key!r}")
            seen.add(key)
    return out


_CONTAINERS = frozenset({dict, list})  # what the decoder makes (exactly these types)


def _too_deep(value: Any, limit: int) -> bool:
    # Level by level over containers only: scalars, the bulk of a document, are never queued.
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if type(item) is dict else item) if type(c) in _CONTAINERS]
        level = below
    return False


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def loads(text: str | bytes, source: str = "JSON text", error: Callable[[str], Exception] = ConfigError) -> Any:
    """Parse ``text`` strictly (see the module doc); raise ``error(message)`` naming ``source`` and the position.

    ``error`` defaults to :class:`ConfigError`; snapshot readers pass ``PersistenceError``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _Reject as exc:
        raise error(f"{source}: invalid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{source}: invalid JSON: nested too deeply") from None
    if _too_deep(value, MAX_DEPTH):
        raise error(f"{source}: invalid JSON: nested deeper than {MAX_DEPTH} levels")
    return value


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact; readers accept decimal strings for every price
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Serialise ``value``; ``Decimal`` becomes an exact decimal string, ``datetime`` ISO 8601."""
    return json.dumps(value, indent=indent, default=_default, ensure_ascii=False, allow_nan=False)


def read_text(path: Path, max_bytes: int | None = None) -> str | None:
    """The UTF-8 text of ``path``; ``None`` when it does not exist.

    Raises :class:`PersistenceError` (naming the file, with the ``OSError`` as cause) when it cannot be read, is not
    UTF-8, or is larger than ``max_bytes``.
    """
    read = read_text_and_stat(path, max_bytes)
    return None if read is None else read[0]


def read_text_and_stat(path: Path, max_bytes: int | None = None) -> tuple[str, os.stat_result] | None:
    """:func:`read_text`, with the ``os.fstat`` of exactly the file read (another may replace it meanwhile)."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            raw = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(raw) > max_bytes:
        raise PersistenceError(f"{path}: larger than the {max_bytes}-byte limit")
    try:
        return raw.decode("utf-8"), st
    except UnicodeDecodeError as exc:
        raise PersistenceError(f"{path}: not UTF-8 text (byte {exc.start})") from None
