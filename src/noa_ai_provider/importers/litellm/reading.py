"""Reading LiteLLM's catalogue: a caller's mapping as it is, or a JSON file parsed strictly (``jsonio``), and when
the only fault of its text is duplicate keys, parsed again keeping the first of each so that only the entries
concerned are skipped (:class:`Repeated` marks them) rather than the whole catalogue refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ... import jsonio
from ...errors import ConfigError, PersistenceError

__all__ = ["Repeated", "read_catalog"]


def read_catalog(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Mapping[Any, Any], list[str], bool]:
    """The catalogue mapping, the names repeated in the JSON text, and whether values must be copied."""
    if isinstance(source, Mapping):
        return source, [], True  # the caller's mapping: metadata must not share its lists and dicts
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"expected a path or a mapping, got {type(source).__name__}")
    path = Path(source)
    text = jsonio.read_text(path)
    if text is None:
        raise PersistenceError(f"{path}: no such file")
    duplicates: list[str] = []
    try:
        data = jsonio.loads(text, str(path))
    except ConfigError:
        lenient = _loads_keeping_first(text)
        if lenient is None:  # the error was not (only) a duplicate key
            raise
        data, duplicates = lenient
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of model entries, got {type(data).__name__}")
    return data, duplicates, False


class Repeated(dict[str, Any]):
    """A JSON object that had duplicate keys; the first value of each was kept."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: dict[str, Any], repeated: list[str]) -> None:
        super().__init__(pairs)
        self.repeated = repeated


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _loads_keeping_first(text: str) -> tuple[dict[str, Any], list[str]] | None:
    """Parse ``text`` keeping the first of duplicate keys: the catalogue and its repeated names, with every entry
    that has a duplicate key inside replaced by a ``Repeated`` marker. ``None`` when there is no duplicate key or
    the text is invalid for another reason (the caller re-raises jsonio's error)."""
    found: list[int] = []

    def keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        repeated: list[str] = []
        for key, value in pairs:
            if key in out:
                repeated.append(key)
            else:
                out[key] = value
        if not repeated:
            return out
        found.append(1)
        return Repeated(out, repeated)

    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=keep_first)
    try:
        data = decoder.decode(text)
    except (ValueError, RecursionError):
        return None
    if not found or not isinstance(data, dict):
        return None
    try:  # whatever else jsonio checks (nesting depth) must still hold once the duplicates are gone
        jsonio.loads(jsonio.dumps(data, indent=None))
    except ConfigError:
        return None
    names = data.repeated if isinstance(data, Repeated) else []
    catalog = {
        name: Repeated({}, repeated) if (repeated := _repeated_inside(entry)) else entry for name, entry in data.items()
    }
    return catalog, names


def _repeated_inside(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = list(value.repeated) if isinstance(value, Repeated) else []
        return own + [key for item in value.values() for key in _repeated_inside(item)]
    if isinstance(value, list):
        return [key for item in value for key in _repeated_inside(item)]
    return []
