"""The field types of the schemas: exact prices, strict integers and strings, versions, UTC datetimes, providers.

Each is an ``Annotated`` type carrying its validation (and, for prices and providers, its JSON serialisation).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from ..versions import validate_version
from .base import (
    MAX_INT,
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    short_repr,
)
from .enums import ProviderType

__all__ = [
    "KNOWN_PROVIDERS",
    "MAX_PRICE_DIGITS",
    "MAX_PRICE_EXPONENT",
    "MIN_PRICE_EXPONENT",
    "PROVIDER_SYNONYMS",
    "Fraction",
    "NonEmptyStr",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveInt",
    "Price",
    "Provider",
    "UtcDatetime",
    "Version",
    "normalize_provider",
]


def _to_price(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, Decimal):
        price = value
    elif isinstance(value, int):
        price = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be finite (NaN and Infinity are not prices)")
        # repr is the shortest string that round-trips, so 0.01 becomes Decimal("0.01"), not 0.01000000000000000020...
        price = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            price = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"must be a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"must be a number or a decimal string, got {type(value).__name__}")
    if not price.is_finite():
        raise ValueError("must be finite (NaN and Infinity are not prices)")
    if price < 0:
        raise ValueError(f"must be >= 0, got {short_repr(price)}")
    if price and not MIN_PRICE_EXPONENT <= price.adjusted() <= MAX_PRICE_EXPONENT:
        raise ValueError(
            f"must be between 1e{MIN_PRICE_EXPONENT} and 1e{MAX_PRICE_EXPONENT + 1} (or 0), got {short_repr(price)}"
        )
    if len(price.as_tuple().digits) > MAX_PRICE_DIGITS:
        raise ValueError(f"must have at most {MAX_PRICE_DIGITS} significant digits, got {short_repr(price)}")
    return price


MAX_PRICE_EXPONENT = 17
MIN_PRICE_EXPONENT = -40
MAX_PRICE_DIGITS = 40
"""Bounds of a price: below 1e18, at least 1e-40 unless 0, at most 40 significant digits. Within them every cost
of up to 2**63-1 tokens is exact in the 60-digit money context; beyond them arithmetic would overflow or round."""


Price = Annotated[Decimal, PlainValidator(_to_price), PlainSerializer(str, when_used="json")]
"""A non-negative, finite ``Decimal``; JSON numbers or decimal strings in, decimal strings out."""


def _real_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a number, got {type(value).__name__}")
    return float(value)


NonNegativeFloat = Annotated[float, BeforeValidator(_real_number), Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, BeforeValidator(_real_number), Field(ge=0, le=1, allow_inf_nan=False)]
PositiveInt = Annotated[int, Strict(), Field(gt=0, le=MAX_INT)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=MAX_INT)]
NonEmptyStr = Annotated[str, Strict(), Field(min_length=1)]
Version = Annotated[str, Strict(), AfterValidator(validate_version)]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _to_provider(value: object) -> ProviderType | str:
    if isinstance(value, ProviderType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("must be a non-empty string")
    if ":" in value:
        # The key is f"{provider}:{id}"; a colon in the provider would make two models share a key.
        raise ValueError(f"must not contain ':', got {value!r}")
    known = _known_provider(value)
    return value if known is None else known  # anything else is a custom provider, kept as written


KNOWN_PROVIDERS: dict[str, ProviderType] = {p.value: p for p in ProviderType}
"""The built-in providers by name; any other name is a custom provider."""

PROVIDER_SYNONYMS: dict[str, ProviderType] = {
    **{p.value: p for p in ProviderType},
    "anthropic": ProviderType.CLAUDE,
    "llama-cpp": ProviderType.LLAMA_CPP,
    "llama_cpp": ProviderType.LLAMA_CPP,
    "llamacpp": ProviderType.LLAMA_CPP,
}
"""Other spellings of the built-in providers, lower case: ``Anthropic``, ``OpenAI`` or ``llama_cpp`` name a built-in
provider, never a new custom one."""


def normalize_provider(value: str) -> str:
    """The provider name ``value`` stands for: a built-in provider's value for any case or synonym of it
    (``"Anthropic"`` -> ``"claude"``), else ``value`` itself.

    >>> normalize_provider("OpenAI"), normalize_provider("anthropic"), normalize_provider("mistral")
    ('openai', 'claude', 'mistral')
    """
    known = _known_provider(value)
    return value if known is None else known.value


def _known_provider(value: str) -> ProviderType | None:
    return KNOWN_PROVIDERS.get(value) or PROVIDER_SYNONYMS.get(value.strip().lower())


Provider = Annotated[ProviderType | str, PlainValidator(_to_provider), PlainSerializer(str, when_used="json")]
