"""Strict JSON reading and exact JSON writing, shared by config files, snapshots and imports.

The standard ``json`` module accepts ``NaN``/``Infinity``, keeps the last of duplicate keys and turns ``0.1`` into
a float. Here numbers with a fraction or exponent become :class:`~decimal.Decimal` (prices stay exact), the
non-finite constants and duplicate keys are errors, and every error names the source and the line and column.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import ConfigError, PersistenceError

__all__ = ["MAX_DEPTH", "check_regular", "dumps", "loads", "read_text", "read_text_and_stat"]

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


_INT_DIGITS = 4300  # what int() converts (sys.get_int_max_str_digits' default); longer ones stay Decimal


def _parse_int(text: str) -> int | Decimal:
    # An integer too long for int() is kept as an exact Decimal, so parsing never fails on it: the schema that
    # reads the value then refuses it naming the field (an integer field wants an int, a price a bounded number).
    if len(text) > _INT_DIGITS:
        return Decimal(text)
    return int(text)


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_int=_parse_int, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
)


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


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: Path) -> None:
    """Raise :class:`PersistenceError` when ``path`` exists and is not a regular file (following symlinks; a
    symlink loop raises too). A missing path is fine: it will be created."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there yet (writing it will say why it cannot be created, if it cannot)
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot use it: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise PersistenceError(f"{path}: not a regular file ({_kind(st.st_mode)})")


def read_text(path: Path, max_bytes: int | None = None) -> str | None:
    """The UTF-8 text of ``path``; ``None`` when it does not exist.

    Raises :class:`PersistenceError` (naming the file, with the ``OSError`` as cause) when it cannot be read, is not
    UTF-8, or is larger than ``max_bytes``.
    """
    read = read_text_and_stat(path, max_bytes)
    return None if read is None else read[0]


def read_text_and_stat(path: Path, max_bytes: int | None = None) -> tuple[str, os.stat_result] | None:
    """:func:`read_text`, with the ``os.fstat`` of exactly the file read (another may replace it meanwhile).

    Only a regular file is read: a FIFO, a device (``/dev/zero``), a directory or a symlink loop raises
    :class:`PersistenceError` at once (opened without blocking, so a FIFO with no writer cannot hang the caller).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        with open(fd, "rb", closefd=False) as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PersistenceError(f"{path}: not a regular file ({_kind(st.st_mode)}); refusing to read it")
            if getattr(os, "O_NONBLOCK", 0):
                os.set_blocking(fd, True)
            raw = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if max_bytes is not None and len(raw) > max_bytes:
        raise PersistenceError(f"{path}: larger than the {max_bytes}-byte limit")
    try:
        return raw.decode("utf-8"), st
    except UnicodeDecodeError as exc:
        raise PersistenceError(f"{path}: not UTF-8 text (byte {exc.start})") from None
