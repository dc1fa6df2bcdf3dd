"""The prices of a model: base prices, long-context tiers, service tiers (``batch``, ``flex``, ``priority``)."""

from __future__ import annotations

from typing import Annotated, Literal

from .base import AfterValidator, _Schema
from .fields import NonEmptyStr, NonNegativeInt, PositiveInt, Price

__all__ = [
    "PRICE_KINDS",
    "SERVICE_TIERS",
    "ModelCost",
    "PriceTier",
    "ServiceTier",
    "ServiceTierPrices",
    "ServiceTiers",
    "Tiers",
]


class PriceTier(_Schema):
    """Long-context prices: when a request's input exceeds ``above_input_tokens`` (strictly), its tokens bill at
    these prices. A tier may change only some prices: each price it leaves out is the one in force below it (the
    base price, or that of the highest lower tier the request also crosses), so each kind of price carries upward
    across every threshold the request crosses. A tier states at least one price.

    .. versionchanged:: 0.2.0
       A tier may leave prices out (each carries upward from below); the ``cache_write_1h_tokens`` price.
    """

    above_input_tokens: NonNegativeInt
    input_tokens: Price | None = None
    output_tokens: Price | None = None
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None


PRICE_KINDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
)
"""The price fields a price level (base, tier, service tier) can state, in this order."""


def _check_tiers(tiers: list[PriceTier] | None) -> list[PriceTier] | None:
    if tiers:
        thresholds = [t.above_input_tokens for t in tiers]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"tier thresholds must be distinct, got {thresholds}")
        for index, tier in enumerate(tiers):
            if all(getattr(tier, kind) is None for kind in PRICE_KINDS):
                raise ValueError(f"tier [{index}] (above {tier.above_input_tokens}) states no price")
        tiers = sorted(tiers, key=lambda t: t.above_input_tokens)
    return tiers


Tiers = Annotated[list[PriceTier] | None, AfterValidator(_check_tiers)]


class ServiceTierPrices(_Schema):
    """Prices of a service tier (``batch``, ``flex``, ``priority``), in the model's ``per``.

    A price the service tier leaves out, at its base or at a long-context threshold, is the standard one (see
    :func:`noa_ai_provider.cost.request_rates`; ``batch`` has rules of its own). At least one price is stated.

    .. versionchanged:: 0.2.0
       Prices may be left out (the standard ones apply, per threshold); the ``cache_write_1h_tokens`` price.
    """

    input_tokens: Price | None = None
    output_tokens: Price | None = None
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None
    tiers: Tiers = None


ServiceTier = Literal["batch", "flex", "priority"]
SERVICE_TIERS: tuple[str, ...] = ("batch", "flex", "priority")


def _check_service_tiers(value: dict[str, ServiceTierPrices] | None) -> dict[str, ServiceTierPrices] | None:
    for name, prices in (value or {}).items():
        if all(getattr(prices, kind) is None for kind in PRICE_KINDS) and not prices.tiers:
            raise ValueError(f"service tier {name!r} states no price")
    return value


ServiceTiers = Annotated[dict[ServiceTier, ServiceTierPrices] | None, AfterValidator(_check_service_tiers)]


class ModelCost(_Schema):
    """Prices of a model, per ``per`` tokens.

    ``input_tokens`` and ``output_tokens`` are the base prices; ``cached_input_tokens`` (cache reads) and
    ``cache_write_tokens`` (cache creation, the default 5-minute lifetime) default to the input price when missing
    (an explicit 0 means free); ``cache_write_1h_tokens`` (Anthropic's 1-hour cache writes) defaults to the cache
    write price; ``tiers`` are long-context prices; ``service_tiers`` prices for ``batch``, ``flex`` and
    ``priority``. The rules are those of :func:`noa_ai_provider.cost.request_rates`.

    .. versionchanged:: 0.2.0
       The ``cache_write_1h_tokens`` price; prices carry upward across long-context tiers, service tiers fall
       back to the standard prices per threshold and batch to half of them; prices are bounded.
    """

    input_tokens: Price
    output_tokens: Price
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None
    tiers: Tiers = None
    service_tiers: ServiceTiers = None
    currency: NonEmptyStr = "USD"
    per: PositiveInt = 1000
    note: str | None = None
