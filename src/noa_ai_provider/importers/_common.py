"""What the catalogue importers share: the result type, exact price conversion and provider names.

Imports only the lower layers (errors, schemas); never the registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from ..schemas import ExtendedModelInfo, model_key, validate_or_raise

__all__ = [
    "CatalogImport",
    "EntryError",
    "ModelCollector",
    "SkippedEntry",
    "describe",
    "map_provider",
    "non_negative",
    "shift",
]


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A catalogue entry that was not imported, and why."""

    name: str
    reason: str


class CatalogImport(list[ExtendedModelInfo]):
    """The models an importer produced (a plain ``list``), plus ``skipped``: every entry left out, with its reason."""

    __slots__ = ("skipped",)

    def __init__(self, models: Iterable[ExtendedModelInfo] = (), skipped: Iterable[SkippedEntry] = ()) -> None:
        super().__init__(models)
        self.skipped: list[SkippedEntry] = list(skipped)


class EntryError(ValueError):
    """One entry cannot be converted; the message is the reason reported in :class:`SkippedEntry`."""


_PROVIDER_NAMES = {"anthropic": "claude"}  # our ProviderType.CLAUDE; "openai" is already ours


def map_provider(name: str) -> str:
    """A catalogue's provider name as ours: ``anthropic`` becomes ``claude``, ``:`` (our key separator) ``-``."""
    return _PROVIDER_NAMES.get(name, name).replace(":", "-")


def describe(value: object) -> str:
    """``type repr`` of a bad value for a reason, the repr cut to 40 characters."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def non_negative(value: object) -> Decimal:
    """``value`` (an ``int``, ``float`` or ``Decimal``) as an exact ``Decimal``; else raise :class:`EntryError`.

    A float goes through its shortest ``repr``, so ``2.5e-06`` becomes ``Decimal("0.0000025")`` exactly.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EntryError(f"must be finite, got {value!r}")
        number = Decimal(repr(float(value)))  # float() first: a subclass may have its own repr
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise EntryError(f"must be finite, got {value}")
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(int(value))
    else:
        raise EntryError(f"must be a number, got {describe(value)}")
    if number < 0:
        raise EntryError(f"must be >= 0, got {number}")
    return number


def shift(number: Decimal, places: int) -> Decimal:
    """``number * 10**places`` exactly (no context rounding), without trailing zeros and never in E+ notation.

    >>> shift(Decimal("2.5E-6"), 6), shift(Decimal("0.000010"), 6), shift(Decimal("0E-9"), 6)
    (Decimal('2.5'), Decimal('10'), Decimal('0'))
    """
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    if not any(digits):
        return Decimal(0)
    exponent += places
    end = len(digits)
    while exponent < 0 and digits[end - 1] == 0:
        end -= 1
        exponent += 1
    kept = digits[:end]
    if exponent > 0:
        kept += (0,) * exponent
        exponent = 0
    return Decimal((sign, kept, exponent))


class ModelCollector:
    """Validates converted entries and gathers them into a :class:`CatalogImport`.

    A second model with the key (``provider:id``) of an earlier one is skipped; the first is kept.
    """

    __slots__ = ("keys", "result")

    def __init__(self) -> None:
        self.result = CatalogImport()
        self.keys: set[str] = set()

    def skip(self, name: str, reason: str) -> None:
        self.result.skipped.append(SkippedEntry(name, reason))

    def add(self, name: str, fields: dict[str, Any]) -> None:
        """Validate ``fields`` (snake_case) as an :class:`ExtendedModelInfo`; keep it, or skip it with the reason."""
        try:
            model = validate_or_raise(ExtendedModelInfo, fields)
        except ConfigError as exc:
            self.skip(name, f"invalid: {exc}")
            return
        key = model_key(model.provider, model.id)
        if key in self.keys:
            self.skip(name, f"duplicate key {key!r}: the first entry with it was kept")
            return
        self.keys.add(key)
        self.result.append(model)
