"""What the catalogue importers share: the result type, exact price conversion, provider names, and building
models without pydantic's validation once the same rules have been checked here.

Imports only the lower layers (errors, schemas); never the registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NamedTuple

from ..errors import ConfigError
from ..schemas import (
    ExtendedModelInfo,
    ModelCost,
    ModelStatus,
    PriceTier,
    ServiceTierPrices,
    model_key,
    schema_shape,
    short_repr,
    validate_or_raise,
)

__all__ = [
    "FAST_PATH",
    "MIRRORED",
    "CatalogImport",
    "EntryError",
    "ModelCollector",
    "SkippedEntry",
    "describe",
    "map_provider",
    "non_negative",
    "price_value",
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


class CatalogLoad(NamedTuple):
    """What a registry's one-step catalogue import registered (``keys``, in catalogue order) and left out."""

    keys: list[str]
    skipped: list[SkippedEntry]


class EntryError(ValueError):
    """One entry cannot be converted; the message is the reason reported in :class:`SkippedEntry`."""


_PROVIDER_NAMES = {"anthropic": "claude"}  # our ProviderType.CLAUDE; "openai" is already ours


def map_provider(name: str) -> str:
    """A catalogue's provider name as ours: ``anthropic`` becomes ``claude``, ``:`` (our key separator) ``-``."""
    return _PROVIDER_NAMES.get(name, name).replace(":", "-")


def describe(value: object) -> str:
    """``type repr`` of a bad value for a reason, the repr cut to 40 characters."""
    return f"{type(value).__name__} {short_repr(value)}"


def price_value(value: object, key: str, places: int) -> Decimal:
    """A catalogue's price under ``key``, checked (:func:`non_negative`) and moved ``places`` decimal places (e.g.
    per token to per million); the reason names the key."""
    try:
        return shift(non_negative(value), places)
    except EntryError as exc:
        raise EntryError(f"{key}: {exc}") from None


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


# --------------------------------------------------------------------------- models without pydantic's validation
#
# Validating thousands of freshly converted entries with pydantic costs as much as converting them. An importer
# that has checked its values against the schemas' rules itself (strict types, ranges, finite non-negative prices,
# a valid version, what the validators enforce) builds the instances with build_trusted instead: what validation
# would have left behind, field for field. FAST_PATH says whether the schemas are still the ones those checks
# mirror: when a field, a default or a validator changes, it turns False (every model goes through pydantic again)
# and a test fails until the importers' checks are brought in line.


# Per schema: (field, default (... when required), default factory) for each field, then the field validators.
# What a schema checks in an ``Annotated`` validator rather than a field validator is not part of the fingerprint;
# the importers mirror those checks too (see each entry):
# - ExtendedModelInfo.aliases (``schemas.Aliases``): the importers give none (an empty list, not in the fields set);
# - ModelCost.tiers, ServiceTierPrices.tiers (``schemas.Tiers``): distinct thresholds, sorted, each tier states at
#   least one price;
# - ModelCost.service_tiers (``schemas.ServiceTiers``): each service tier states a price or has tiers
# (for the LiteLLM importer, ``litellm.trusted._trusted_cost`` checks the last two).
# The schema shapes the importers build models for without validation; FAST_PATH holds while these are the shapes.
MIRRORED: Final[dict[type[Any], tuple[Any, ...]]] = {
    ExtendedModelInfo: (
        ("id", ..., None),
        ("name", ..., None),
        ("provider", ..., None),
        ("version", ..., None),
        ("aliases", ..., list),
        ("context_window", None, None),
        ("max_tokens", None, None),
        ("capabilities", ..., list),
        ("cost", ..., None),
        ("rate_limit", None, None),
        ("metadata", ..., dict),
        ("status", ModelStatus.AVAILABLE, None),
        ("_dedupe", "_check_metadata"),
    ),
    ModelCost: (
        ("input_tokens", ..., None),
        ("output_tokens", ..., None),
        ("cached_input_tokens", None, None),
        ("cache_write_tokens", None, None),
        ("cache_write_1h_tokens", None, None),
        ("tiers", None, None),
        ("service_tiers", None, None),
        ("currency", "USD", None),
        ("per", 1000, None),
        ("note", None, None),
        (),
    ),
    ServiceTierPrices: (
        ("input_tokens", None, None),
        ("output_tokens", None, None),
        ("cached_input_tokens", None, None),
        ("cache_write_tokens", None, None),
        ("cache_write_1h_tokens", None, None),
        ("tiers", None, None),
        (),
    ),
    PriceTier: (
        ("above_input_tokens", ..., None),
        ("input_tokens", None, None),
        ("output_tokens", None, None),
        ("cached_input_tokens", None, None),
        ("cache_write_tokens", None, None),
        ("cache_write_1h_tokens", None, None),
        (),
    ),
}


FAST_PATH: Final = all(schema_shape(schema) == shape for schema, shape in MIRRORED.items())
"""Whether the schemas are still those the importers' own checks mirror (else they validate with pydantic)."""


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
        self.add_model(name, model)

    def add_model(self, name: str, model: ExtendedModelInfo) -> None:
        """Keep ``model`` (already valid), or skip it when an earlier model has its key."""
        key = model_key(model.provider, model.id)
        if key in self.keys:
            self.skip(name, f"duplicate key {key!r}: the first entry with it was kept")
            return
        self.keys.add(key)
        self.result.append(model)
