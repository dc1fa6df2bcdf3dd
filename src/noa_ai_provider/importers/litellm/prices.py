"""A LiteLLM entry's prices as a ``cost``: the price keys (base, long-context ``_above_<N>k_tokens``, service tier
``_batches`` / ``_flex`` / ``_priority``), exact conversion from per token to per million tokens, the tiers and
service tiers they make, ``tiered_pricing`` ranges, and LiteLLM's default cache-read price for Fireworks AI.

The rules are those of LiteLLM's cost calculation; the package docstring (:mod:`noa_ai_provider.importers.litellm`)
states them. :class:`PriceConverter` is the base of the entry converter, which shares its price cache.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Container, Mapping
from decimal import Decimal
from typing import Any, Final

from ...schemas import MONEY_CONTEXT
from ..common import EntryError, describe, price_value, shift

__all__ = [
    "DEFAULT_CACHE_READ_SHARE",
    "EMBEDDING_NOTE",
    "PER",
    "Found",
    "PriceConverter",
    "PriceKind",
    "default_cache_read",
    "free_output",
    "non_negative_int",
    "price_kind",
]

_PLACES: Final = 6
PER: Final = 10**_PLACES  # prices per million tokens

_PRICE_FIELDS: Final = {
    "input_cost_per_token": "input_tokens",
    "output_cost_per_token": "output_tokens",
    "cache_read_input_token_cost": "cached_input_tokens",
    "cache_creation_input_token_cost": "cache_write_tokens",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_tokens",
}
_SERVICE_TIERS: Final = {"batches": "batch", "flex": "flex", "priority": "priority"}
_PRICE_KEY: Final = re.compile(
    r"(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost(?:_above_1hr)?)"
    r"(?:_above_(\d+)(k?)_tokens)?(?:_(batches|flex|priority))?"
)
_INCLUSIVE_THRESHOLD_PROVIDERS: Final = frozenset({"xai"})  # LiteLLM bills xAI's tier once the input reaches it
# LiteLLM's share of the input price for the cache reads an entry leaves unpriced (its
# FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO)
DEFAULT_CACHE_READ_SHARE: Final = {"fireworks_ai": Decimal("0.5")}
_DEFAULT_CACHE_READ_NOTE: Final = (
    "cache reads priced at {share} of the input price: LiteLLM's default for {provider} entries without a "
    "cache-read price"
)
_TIER_FIELDS: Final = frozenset({"range", *_PRICE_FIELDS})
_RANGE_FALLBACKS: Final = ("cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens")  # in this order
EMBEDDING_NOTE: Final = "LiteLLM lists no output price; embeddings produce no output tokens"

PriceKind = tuple[str, int | None, str | None]  # (field, threshold or None, service tier or None)
Found = tuple[str, Decimal]  # (the LiteLLM key, the price per million tokens)


def price_kind(key: str) -> PriceKind | None:
    """What a price key prices: (our field, threshold or ``None``, service tier or ``None``); ``None`` for any
    other key."""
    match = _PRICE_KEY.fullmatch(key)
    if match is None:
        return None
    field, number, thousands, service = match.groups()
    threshold = None if number is None else int(number) * (1000 if thousands else 1)
    return (_PRICE_FIELDS[field], threshold, None if service is None else _SERVICE_TIERS[service])


class PriceConverter:
    """Converts an entry's prices; remembers every price it converted (entries repeat a few hundred values)."""

    def __init__(self) -> None:
        self.prices: dict[tuple[type, Any], Decimal] = {}

    def price(self, value: Any, key: str) -> Decimal:
        """A per-token price as an exact price per million tokens."""
        cache_key = (type(value), value)
        try:
            return self.prices[cache_key]
        except KeyError:
            pass
        except TypeError:  # unhashable: a list or dict
            raise EntryError(f"{key}: must be a number, got {describe(value)}") from None
        price = price_value(value, key, _PLACES)
        self.prices[cache_key] = price
        return price

    def cost(
        self,
        entry: Mapping[str, Any],
        provider: str,
        mode: str | None,
        price_keys: dict[PriceKind, Found],
        used: set[str],
        rest: dict[str, Any],
    ) -> dict[str, Any] | None:
        """The ``cost`` fields, or ``None`` when unpriced; adds the keys it consumed to ``used``."""
        tiered = entry.get("tiered_pricing")
        if tiered is not None:
            if _is_token_tiers(tiered):
                return self.tiered_cost(tiered, price_keys, used, rest)
            rest["tiered_pricing"] = tiered  # e.g. per-query prices by result count
        # levels[service][threshold][field] = (key, price)
        levels: dict[str | None, dict[int | None, dict[str, Found]]] = {}
        for (field, threshold, service), found in price_keys.items():
            levels.setdefault(service, {}).setdefault(threshold, {})[field] = found
        standard = levels.pop(None, {})
        base = standard.get(None, {})
        if free_output(base, mode):
            note = EMBEDDING_NOTE
            base = {**base, "output_tokens": ("", Decimal(0))}
        else:
            note = None
        if "input_tokens" not in base or "output_tokens" not in base:
            return None  # unpriced: every price stays in metadata
        inclusive = provider in _INCLUSIVE_THRESHOLD_PROVIDERS
        cost = _level(standard, base, inclusive, used)
        cost["per"] = PER
        cost["currency"] = "USD"
        if note is not None:
            cost["note"] = note
        service_tiers: dict[str, dict[str, Any]] = {}
        for service, prices in levels.items():
            assert service is not None
            # only what the entry states: the engine falls back to the standard prices as LiteLLM does
            service_tiers[service] = _level(prices, prices.get(None, {}), inclusive, used)
        if service_tiers:
            cost["service_tiers"] = service_tiers
        return cost

    def tiered_cost(
        self,
        tiered: list[Any],
        price_keys: dict[PriceKind, Found],
        used: set[str],
        rest: dict[str, Any],
    ) -> dict[str, Any]:
        """Prices from ``tiered_pricing``: the first range's are the base, each later range a tier."""
        model_output = price_keys.get(("output_tokens", None, None))
        rows: list[tuple[int, int, dict[str, Decimal]]] = []
        for index, tier in enumerate(tiered):
            where = f"tiered_pricing[{index}]"
            if not isinstance(tier, Mapping):
                raise EntryError(f"{where}: expected an object, got {describe(tier)}")
            bounds = tier.get("range")
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise EntryError(f"{where}.range: expected [start, end], got {describe(bounds)}")
            start = non_negative_int(bounds[0], f"{where}.range")
            end = non_negative_int(bounds[1], f"{where}.range")
            if end <= start:
                raise EntryError(f"{where}.range: the end must be above the start, got {[start, end]}")
            prices: dict[str, Decimal] = {}
            for key, field in _PRICE_FIELDS.items():
                if key in tier:
                    prices[field] = self.price(tier[key], f"{where}.{key}")
            if "input_tokens" not in prices:
                raise EntryError(f"{where}: no input_cost_per_token")
            if "output_tokens" not in prices:
                if model_output is None:
                    raise EntryError(f"{where}: no output_cost_per_token (and none for the model)")
                prices["output_tokens"] = model_output[1]
                used.add(model_output[0])
            rows.append((start, end, prices))
        rows.sort(key=lambda row: row[0])
        if not rows or rows[0][0] != 0:
            raise EntryError("tiered_pricing: the first range must start at 0")
        for (_, end, _p), (start, _e, _q) in itertools.pairwise(rows):
            if start != end:
                raise EntryError(f"tiered_pricing: ranges must follow each other, got a gap or overlap at {start}")
        if any(not _TIER_FIELDS.issuperset(tier) for tier in tiered):
            rest["tiered_pricing"] = tiered  # priced from it, but it holds more (e.g. reasoning prices)
        cost: dict[str, Any] = {**rows[0][2], "per": PER, "currency": "USD"}
        if len(rows) > 1:
            tiers: list[dict[str, Any]] = []
            stated = set(rows[0][2])  # the kinds some range up to this one prices
            for start, _end, prices in rows[1:]:
                above: dict[str, Any] = {"above_input_tokens": start, **prices}
                # LiteLLM bills a range's missing cache price at that range's own input price (a missing 1-hour
                # write at its write price), never at a lower range's: state it where one would carry upward
                for field in _RANGE_FALLBACKS:
                    if field not in prices and field in stated:
                        fallback = "cache_write_tokens" if field == "cache_write_1h_tokens" else "input_tokens"
                        above[field] = above.get(fallback, prices["input_tokens"])
                stated.update(prices)
                tiers.append(above)
            cost["tiers"] = tiers
        return cost


def free_output(prices: Container[str], mode: str | None) -> bool:
    # An embedding model priced for its input only: its outputs (vectors) are free, not unknown.
    return mode == "embedding" and "input_tokens" in prices and "output_tokens" not in prices


def _is_token_tiers(tiered: Any) -> bool:
    """Whether ``tiered_pricing`` prices tokens by input ranges (rather than, e.g., queries by result count)."""
    return isinstance(tiered, list) and any(isinstance(t, Mapping) and "range" in t for t in tiered)


def non_negative_int(value: Any, key: str) -> int:
    """A token count or range bound: a whole number >= 0 (an ``int``, or a whole ``float`` or ``Decimal``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise EntryError(f"{key}: must be a whole number, got {describe(value)}")
    whole = (
        isinstance(value, int)
        or (isinstance(value, float) and value.is_integer())
        or (isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value())
    )
    if not whole:
        raise EntryError(f"{key}: must be a whole number, got {describe(value)}")
    number = int(value)
    if number < 0:
        raise EntryError(f"{key}: must be >= 0, got {number}")
    return number


def _level(
    prices: dict[int | None, dict[str, tuple[str, Decimal]]],
    base: dict[str, tuple[str, Decimal]],
    inclusive: bool,
    used: set[str],
) -> dict[str, Any]:
    """One level's prices (standard or a service tier): ``base`` plus a tier at every threshold of ``prices``
    where any kind has a price, stating only those kinds (the engine carries the others upward)."""
    out: dict[str, Any] = {}
    for field, (key, price) in base.items():
        out[field] = price
        used.add(key)
    tiers: list[dict[str, Any]] = []
    for threshold, tier_prices in prices.items():
        if threshold is None:
            continue
        tier: dict[str, Any] = {"above_input_tokens": threshold - 1 if inclusive and threshold else threshold}
        for field in _PRICE_FIELDS.values():
            found = tier_prices.get(field)
            if found is not None:
                tier[field] = found[1]
                used.add(found[0])
        tiers.append(tier)
    if tiers:
        out["tiers"] = sorted(tiers, key=lambda t: t["above_input_tokens"])
    return out


def default_cache_read(cost: dict[str, Any], provider: str, metadata: dict[str, Any]) -> None:
    """Price cache reads as LiteLLM does for ``provider`` when the entry has no cache-read price: a share of the
    input price (Fireworks AI: half, ``litellm/llms/fireworks_ai/cache_pricing.py``)."""
    share = DEFAULT_CACHE_READ_SHARE[provider]
    cost["cached_input_tokens"] = shift(MONEY_CONTEXT.multiply(cost["input_tokens"], share), 0)
    metadata["price_note"] = _DEFAULT_CACHE_READ_NOTE.format(share=f"{shift(share, 2)}%", provider=provider)
