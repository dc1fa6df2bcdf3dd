"""Pricing rules: cache reads and writes, fallbacks, long-context tiers, service tiers, unpriced models.

Every expected cost is an exact ``Decimal`` computed by hand in the comment next to it (the same numbers are the
worked examples of docs/pricing.md). Prices are per 1,000,000 tokens unless a model says otherwise, so a cost is
``(sum of tokens * price) / 1_000_000``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from noa_ai_provider import (
    ConfigError,
    EnhancedModelRegistry,
    ExtendedModelInfo,
    InvalidUsageError,
    ModelCost,
    PriceTier,
    RegistryError,
    UnpricedModelError,
    usage_from_anthropic,
    usage_from_openai,
)
from noa_ai_provider.cost import request_cost, worst_case_cost
from noa_ai_provider.testing import EventRecorder, FakeClock

from .docblocks import run_blocks
from .samples import LLAMA

M = 1_000_000


def define(model_id: str, cost: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A model definition in the seed's camelCase with ``cost`` (``None``: unpriced)."""
    out: dict[str, Any] = {"id": model_id, "name": model_id.title(), "provider": "openai", "version": "1.0.0"}
    out["cost"] = cost
    out.update(extra)
    return out


# Plain prices, no cache prices: every cache token falls back to the input price.
PLAIN = {"inputTokens": "2.50", "outputTokens": "10.00", "per": M}
# OpenAI-style: cache reads at half price.
CACHED = {"inputTokens": "2.50", "outputTokens": "10.00", "cachedInputTokens": "1.25", "per": M}
# Anthropic-style: cache reads at a tenth, cache writes at 1.25x the input price.
ANTHROPIC = {
    "inputTokens": "3",
    "outputTokens": "15",
    "cachedInputTokens": "0.30",
    "cacheWriteTokens": "3.75",
    "per": M,
}
# No cache prices at all.
NO_CACHE = {"inputTokens": "2", "outputTokens": "8", "per": M}
# Explicit 0: cache reads and writes are free.
FREE_CACHE = {"inputTokens": "2", "outputTokens": "8", "cachedInputTokens": 0, "cacheWriteTokens": 0, "per": M}
# A cache-read price but no cache-write price: writes fall back to the input price (not to the read price).
READ_ONLY = {"inputTokens": "3", "outputTokens": "15", "cachedInputTokens": "0.30", "per": M}
# A cache-write price but no cache-read price: reads fall back to the input price.
WRITE_ONLY = {"inputTokens": "3", "outputTokens": "15", "cacheWriteTokens": "3.75", "per": M}
# Long-context tiers, listed out of order on purpose (they are sorted by threshold).
TIERED = {
    "inputTokens": "1",
    "outputTokens": "4",
    "cachedInputTokens": "0.1",
    "per": M,
    "tiers": [
        {"aboveInputTokens": 200_000, "inputTokens": "3", "outputTokens": "12", "cachedInputTokens": "0.3"},
        # no cache price: reads keep the base price (0.1) in force below, writes the input price in force
        {"aboveInputTokens": 100_000, "inputTokens": "2", "outputTokens": "8"},
    ],
}
# Service tiers: batch without cache prices (reads at half the standard price), flex with a cache price and no
# long-context price (the standard one applies above 100,000), priority with its own long-context tier (which states
# no cache price: the standard long-context one applies).
SERVICE = {
    "inputTokens": "2",
    "outputTokens": "8",
    "cachedInputTokens": "0.5",
    "per": M,
    "tiers": [{"aboveInputTokens": 100_000, "inputTokens": "4", "outputTokens": "16", "cachedInputTokens": "1"}],
    "serviceTiers": {
        "batch": {"inputTokens": "1", "outputTokens": "4"},
        "flex": {"inputTokens": "1", "outputTokens": "4", "cachedInputTokens": "0.25"},
        "priority": {
            "inputTokens": "3.5",
            "outputTokens": "14",
            "cachedInputTokens": "0.875",
            "tiers": [{"aboveInputTokens": 100_000, "inputTokens": "7", "outputTokens": "21"}],
        },
    },
}

COSTS = {
    "plain": PLAIN,
    "cached": CACHED,
    "anthropic": ANTHROPIC,
    "no-cache": NO_CACHE,
    "free-cache": FREE_CACHE,
    "read-only": READ_ONLY,
    "write-only": WRITE_ONLY,
    "tiered": TIERED,
    "service": SERVICE,
}


@pytest.fixture
def priced(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    """The registry with one model per price set of COSTS, under ``openai:<name>``."""
    registry.register_models([define(name, cost) for name, cost in COSTS.items()])
    return registry


# (model, input, output, keywords, expected cost, the hand computation)
RULES: list[tuple[str, int, int, dict[str, Any], str]] = [
    # base prices: (1000 * 2.50 + 500 * 10) / 1e6 = (2500 + 5000) / 1e6
    ("plain", 1000, 500, {}, "0.0075"),
    # cache read: 2000 uncached * 2.50 + 8000 cached * 1.25 + 500 * 10 = 5000 + 10000 + 5000 = 20000
    ("cached", 10_000, 500, {"cached_input_tokens": 8000}, "0.02"),
    # cache read + write: 50 * 3 + 1000 * 0.30 + 300 * 3.75 + 200 * 15 = 150 + 300 + 1125 + 3000 = 4575
    ("anthropic", 1350, 200, {"cached_input_tokens": 1000, "cache_write_tokens": 300}, "0.004575"),
    # missing cache prices fall back to the input price: 1000 * 2 + 100 * 8 = 2800
    ("no-cache", 1000, 100, {"cached_input_tokens": 600, "cache_write_tokens": 200}, "0.0028"),
    # explicit 0 is free: 300 uncached * 2 + 600 * 0 + 100 * 0 + 100 * 8 = 600 + 800 = 1400
    ("free-cache", 1000, 100, {"cached_input_tokens": 600, "cache_write_tokens": 100}, "0.0014"),
    # the write price falls back to the input price, not the read price: 300 * 3 + 500 * 0.30 + 200 * 3 = 1650
    ("read-only", 1000, 0, {"cached_input_tokens": 500, "cache_write_tokens": 200}, "0.00165"),
    # the read price falls back to the input price: 400 * 3 + 200 * 3 + 400 * 3.75 = 1200 + 600 + 1500 = 3300
    ("write-only", 1000, 0, {"cached_input_tokens": 200, "cache_write_tokens": 400}, "0.0033"),
    # tiers: at the first threshold (not over it) the base prices: 100000 * 1 + 1000 * 4 = 104000
    ("tiered", 100_000, 1000, {}, "0.104"),
    # one token over: the whole request at tier 1: 100001 * 2 + 1000 * 8 = 200002 + 8000 = 208002
    ("tiered", 100_001, 1000, {}, "0.208002"),
    # at the second threshold: still tier 1: 200000 * 2 + 1000 * 8 = 408000
    ("tiered", 200_000, 1000, {}, "0.408"),
    # one over the second: the highest tier exceeded wins: 200001 * 3 + 1000 * 12 = 600003 + 12000 = 612003
    ("tiered", 200_001, 1000, {}, "0.612003"),
    # tier 1 has no cache price: cached tokens keep the base cache price (0.1) in force below it, uncached ones
    # bill at tier 1's input price (2): 100000 * 2 + 50000 * 0.1 = 200000 + 5000 = 205000
    ("tiered", 150_000, 0, {"cached_input_tokens": 50_000}, "0.205"),
    # tier 2's cache price; no write price anywhere, so writes bill at the input price in force (tier 2's 3):
    # 190000 * 3 + 50000 * 0.3 + 10000 * 3 = 570000 + 15000 + 30000 = 615000
    ("tiered", 250_000, 0, {"cached_input_tokens": 50_000, "cache_write_tokens": 10_000}, "0.615"),
    # the threshold counts cached tokens too (input_tokens includes them): 1 * 3 + 200000 * 0.3 = 60003
    ("tiered", 200_001, 0, {"cached_input_tokens": 200_000}, "0.060003"),
    # output tokens never choose the tier: 1000 * 1 + 300000 * 4 = 1201000
    ("tiered", 1000, 300_000, {}, "1.201"),
    # service tiers, same request each time: 10000 in (4000 cached), 1000 out.
    # base: 6000 * 2 + 4000 * 0.5 + 1000 * 8 = 12000 + 2000 + 8000 = 22000
    ("service", 10_000, 1000, {"cached_input_tokens": 4000}, "0.022"),
    # batch has no cache price: half the standard cache price (0.5 / 2 = 0.25), not batch's input price:
    # 6000 * 1 + 4000 * 0.25 + 1000 * 4 = 6000 + 1000 + 4000 = 11000
    ("service", 10_000, 1000, {"cached_input_tokens": 4000, "service_tier": "batch"}, "0.011"),
    # flex: 6000 * 1 + 4000 * 0.25 + 1000 * 4 = 6000 + 1000 + 4000 = 11000
    ("service", 10_000, 1000, {"cached_input_tokens": 4000, "service_tier": "flex"}, "0.011"),
    # priority: 6000 * 3.5 + 4000 * 0.875 + 1000 * 14 = 21000 + 3500 + 14000 = 38500
    ("service", 10_000, 1000, {"cached_input_tokens": 4000, "service_tier": "priority"}, "0.0385"),
    # the base tier applies without a service tier: 150000 * 4 = 600000
    ("service", 150_000, 0, {}, "0.6"),
    # batch states its input price and has no tier: that price holds above the standard threshold:
    # 150000 * 1 = 150000
    ("service", 150_000, 0, {"service_tier": "batch"}, "0.15"),
    # flex has no long-context price: above 100000 the standard one (4), as for a standard request: 150000 * 4
    ("service", 150_000, 0, {"service_tier": "flex"}, "0.6"),
    # priority's own tier, at its threshold: 100000 * 3.5 = 350000
    ("service", 100_000, 0, {"service_tier": "priority"}, "0.35"),
    # and one token over: 100001 * 7 = 700007
    ("service", 100_001, 0, {"service_tier": "priority"}, "0.700007"),
    # priority's tier has no cache price: cached tokens at the standard long-context cache price at that threshold
    # (1), neither priority's 0.875 nor the tier's input price (7): 50000 * 7 + 50001 * 1 = 350000 + 50001 = 400001
    ("service", 100_001, 0, {"cached_input_tokens": 50_001, "service_tier": "priority"}, "0.400001"),
]


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_estimate_cost_rules(
    priced: EnhancedModelRegistry, name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str
) -> None:
    got = priced.estimate_cost(f"openai:{name}", inp, out, **kwargs)
    assert got == Decimal(expected)
    assert isinstance(got, Decimal)


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_record_usage_bills_as_estimated(
    priced: EnhancedModelRegistry, name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str
) -> None:
    key = f"openai:{name}"
    assert priced.record_usage(key, inp, out, **kwargs) == Decimal(expected)
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.total_cost == Decimal(expected)
    assert stats.total_input_tokens == inp
    assert stats.total_cached_input_tokens == kwargs.get("cached_input_tokens", 0)
    assert stats.total_cache_write_tokens == kwargs.get("cache_write_tokens", 0)


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_request_cost_function(name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str) -> None:
    cost = ModelCost.model_validate(COSTS[name])
    assert request_cost(cost, inp, out, **kwargs) == Decimal(expected)


def test_commit_takes_cache_and_service_tier_keywords(priced: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(priced)
    key = "openai:service"
    reservation = priced.acquire(key, 10_000, 1000)
    # flex: 6000 * 1 + 4000 * 0.25 + 800 * 4 = 6000 + 1000 + 3200 = 10200
    assert reservation.commit(800, cached_input_tokens=4000, service_tier="flex") == Decimal("0.0102")
    assert reservation.cost == Decimal("0.0102")
    assert events.of("usage-recorded")[-1]["cost"] == Decimal("0.0102")
    # Anthropic: 50 * 3 + 1000 * 0.30 + 300 * 3.75 + 200 * 15 = 4575
    with priced.acquire("openai:anthropic", 1350, 400) as r2:
        assert r2.commit(200, cached_input_tokens=1000, cache_write_tokens=300) == Decimal("0.004575")
    stats = priced.get_usage_stats("openai:anthropic")
    assert stats is not None
    assert (stats.total_input_tokens, stats.total_cached_input_tokens, stats.total_cache_write_tokens) == (
        1350,
        1000,
        300,
    )
    # input_tokens given explicitly with the keywords: 1000 uncached * 2.50 + 3000 * 1.25 = 2500 + 3750 = 6250
    r3 = priced.acquire("openai:cached", 8000, 0)
    assert r3.commit(0, input_tokens=4000, cached_input_tokens=3000) == Decimal("0.00625")


def test_commit_with_an_invalid_tier_or_counts_records_nothing_and_stays_open(priced: EnhancedModelRegistry) -> None:
    key = "openai:cached"
    reservation = priced.acquire(key, 1000, 100)
    with pytest.raises(InvalidUsageError, match="service_tier"):
        reservation.commit(100, service_tier="flex")  # a valid name, not priced for this model
    with pytest.raises(InvalidUsageError, match="service_tier"):
        reservation.commit(100, service_tier="turbo")  # not a name at all
    with pytest.raises(InvalidUsageError, match="input_tokens includes them"):
        reservation.commit(100, cached_input_tokens=900, cache_write_tokens=101)
    assert reservation.open
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0
    assert priced.get_usage_history(key) == []
    # 1000 * 2.50 + 100 * 10 = 3500
    assert reservation.commit(100) == Decimal("0.0035")


def test_cached_tokens_counted_in_usage_stats(priced: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = "openai:anthropic"
    priced.record_usage(key, 1350, 200, cached_input_tokens=1000, cache_write_tokens=300)
    priced.record_usage(key, 500, 10, cached_input_tokens=400)
    priced.record_usage(key, 700, 0, False, cache_write_tokens=700)  # a failed request counts its tokens too
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.total_input_tokens == 1350 + 500 + 700
    assert stats.total_cached_input_tokens == 1400
    assert stats.total_cache_write_tokens == 1000
    assert stats.request_count == 3
    assert stats.failed_requests == 1
    # 0.004575 + (100 * 3 + 400 * 0.30 + 10 * 15) / 1e6 + 700 * 3.75 / 1e6 = 0.004575 + 0.00057 + 0.002625
    assert stats.total_cost == Decimal("0.00777")
    entry = priced.get_model(key)
    assert entry is not None
    dumped = entry.usage_stats.model_dump(mode="json", by_alias=True)
    assert dumped["totalCachedInputTokens"] == 1400
    assert dumped["totalCacheWriteTokens"] == 1000
    # kept across save and load
    priced.save()
    with EnhancedModelRegistry(persistence_path=priced.persistence_path, auto_save=False, clock=clock) as other:
        other.load()
        again = other.get_usage_stats(key)
    assert again == stats
    priced.reset_usage_stats(key)
    zeroed = priced.get_usage_stats(key)
    assert zeroed is not None
    assert (zeroed.total_cached_input_tokens, zeroed.total_cache_write_tokens) == (0, 0)


# ------------------------------------------------------------------ invalid usage


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cached_input_tokens": 600, "cache_write_tokens": 401}, "input_tokens includes them"),
        ({"cached_input_tokens": 1001}, "input_tokens includes them"),
        ({"cache_write_tokens": 1001}, "input_tokens includes them"),
        ({"cached_input_tokens": -1}, "cached_input_tokens"),
        ({"cache_write_tokens": -5}, "cache_write_tokens"),
        ({"cached_input_tokens": 1.5}, "cached_input_tokens"),
        ({"cache_write_tokens": True}, "cache_write_tokens"),
        ({"service_tier": "turbo"}, "service_tier"),
        ({"service_tier": "flex"}, "not priced"),  # a valid name the model has no price for
    ],
)
def test_invalid_usage_raises_and_records_nothing(
    priced: EnhancedModelRegistry, kwargs: dict[str, Any], match: str
) -> None:
    key = "openai:anthropic"
    events = EventRecorder().attach(priced)
    with pytest.raises(InvalidUsageError, match=match):
        priced.estimate_cost(key, 1000, 10, **kwargs)
    with pytest.raises(InvalidUsageError, match=match):
        priced.record_usage(key, 1000, 10, **kwargs)
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0
    assert priced.get_usage_history(key) == []
    assert events.of("usage-recorded") == []


def test_cache_and_tier_arguments_are_keyword_only(priced: EnhancedModelRegistry) -> None:
    with pytest.raises(TypeError):
        priced.record_usage("openai:cached", 1000, 10, True, 500)  # type: ignore[misc]
    with pytest.raises(TypeError):
        priced.estimate_cost("openai:cached", 1000, 10, 500)  # type: ignore[misc]


def test_cache_tokens_equal_to_input_are_fine(priced: EnhancedModelRegistry) -> None:
    # 600 * 0.30 + 400 * 3.75 = 180 + 1500 = 1680 (no uncached token at all)
    assert priced.estimate_cost(
        "openai:anthropic", 1000, 0, cached_input_tokens=600, cache_write_tokens=400
    ) == Decimal("0.00168")


# ------------------------------------------------------------------ worst case (what a budget reserves)


def test_worst_case_cost_is_the_dearest_input_side_price_of_the_tier() -> None:
    tiered = ModelCost.model_validate(TIERED)
    # 100000 * 1 + 2000 * 4 = 108000 (at the threshold: base prices)
    assert worst_case_cost(tiered, 100_000, 2000) == Decimal("0.108")
    # 100001 * 2 + 2000 * 8 = 216002 (one over: tier 1)
    assert worst_case_cost(tiered, 100_001, 2000) == Decimal("0.216002")
    cached = ModelCost.model_validate(CACHED)
    # 10000 * 2.50 + 500 * 10 = 30000: never the cache price, the request may miss the cache
    assert worst_case_cost(cached, 10_000, 500) == Decimal("0.03")
    anthropic = ModelCost.model_validate(ANTHROPIC)
    # a cache write (3.75) costs more than the input price (3): 1000 * 3.75 + 100 * 15 = 3750 + 1500 = 5250
    assert worst_case_cost(anthropic, 1000, 100) == Decimal("0.00525")
    service = ModelCost.model_validate(SERVICE)
    # priority: 10000 * 3.5 + 1000 * 14 = 49000
    assert worst_case_cost(service, 10_000, 1000, "priority") == Decimal("0.049")
    # batch: 10000 * 1 + 1000 * 4 = 14000
    assert worst_case_cost(service, 10_000, 1000, "batch") == Decimal("0.014")
    # no service tier named: the call may still pick one, so the dearest of base (28000), batch, flex (14000) and
    # priority (49000)
    assert worst_case_cost(service, 10_000, 1000) == Decimal("0.049")
    # above the threshold each at its own tier: base 150000 * 4 = 600000, priority 150000 * 7 = 1050000
    assert worst_case_cost(service, 150_000, 0) == Decimal("1.05")


# ------------------------------------------------------------------ schema


def test_cost_json_is_camel_case_with_exact_decimal_strings() -> None:
    cost = ModelCost.model_validate(SERVICE)
    data = cost.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert data["cachedInputTokens"] == "0.5"
    # tiers come back sorted by threshold
    tiered = ModelCost.model_validate(TIERED).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert [t["aboveInputTokens"] for t in tiered["tiers"]] == [100_000, 200_000]
    assert tiered["tiers"][0] == {"aboveInputTokens": 100_000, "inputTokens": "2", "outputTokens": "8"}
    assert data["serviceTiers"]["priority"]["tiers"][0] == {
        "aboveInputTokens": 100_000,
        "inputTokens": "7",
        "outputTokens": "21",
    }
    assert data["serviceTiers"]["flex"]["cachedInputTokens"] == "0.25"
    assert ModelCost.model_validate(data) == cost


def test_snake_case_and_floats_accepted() -> None:
    cost = ModelCost.model_validate(
        {
            "input_tokens": 0.01,
            "output_tokens": 0.03,
            "cached_input_tokens": 0.005,
            "cache_write_tokens": "0.0125",
            "tiers": [{"above_input_tokens": 128_000, "input_tokens": 0.02, "output_tokens": 0.06}],
            "service_tiers": {"batch": {"input_tokens": 0.005, "output_tokens": 0.015}},
        }
    )
    assert cost.cached_input_tokens == Decimal("0.005")
    assert cost.cache_write_tokens == Decimal("0.0125")
    assert cost.tiers is not None
    assert cost.tiers[0].input_tokens == Decimal("0.02")
    assert cost.service_tiers is not None
    assert cost.service_tiers["batch"].output_tokens == Decimal("0.015")
    # per defaults to 1000: (1000 * 0.01 + 1000 * 0.03) / 1000
    assert request_cost(cost, 1000, 1000) == Decimal("0.04")


def test_missing_cache_prices_are_none_not_zero() -> None:
    cost = ModelCost.model_validate(PLAIN)
    assert cost.cached_input_tokens is None
    assert cost.cache_write_tokens is None
    assert cost.tiers is None
    assert cost.service_tiers is None
    free = ModelCost.model_validate(FREE_CACHE)
    assert free.cached_input_tokens == Decimal(0)
    assert free.cache_write_tokens == Decimal(0)


@pytest.mark.parametrize(
    ("cost", "path"),
    [
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [{"aboveInputTokens": 10, "inputTokens": -1, "outputTokens": 1}],
            },
            "cost.tiers[0].inputTokens: must be >= 0",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [
                    {"aboveInputTokens": 10, "inputTokens": 1, "outputTokens": 1},
                    {"aboveInputTokens": 10, "inputTokens": 2, "outputTokens": 1},
                ],
            },
            "cost.tiers: tier thresholds must be distinct",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"turbo": {"inputTokens": 1, "outputTokens": 1}}},
            "cost.serviceTiers.turbo",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [{"aboveInputTokens": 10, "inputTokens": 1, "outputTokens": 1, "foo": 1}],
            },
            "cost.tiers[0].foo: unknown field",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "serviceTiers": {
                    "batch": {
                        "inputTokens": 1,
                        "outputTokens": 1,
                        "tiers": [{"aboveInputTokens": 10, "inputTokens": 1, "outputTokens": 1, "cachedInput": 1}],
                    }
                },
            },
            "cost.serviceTiers.batch.tiers[0].cachedInput: unknown field",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"batch": {}}},
            "cost.serviceTiers: service tier 'batch' states no price",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "tiers": [{"aboveInputTokens": 10}]},
            "cost.tiers: tier [0] (above 10) states no price",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "serviceTiers": {"flex": {"inputTokens": 1, "tiers": [{"aboveInputTokens": 10}]}},
            },
            "cost.serviceTiers.flex.tiers: tier [0] (above 10) states no price",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [{"aboveInputTokens": -1, "inputTokens": 1, "outputTokens": 1}],
            },
            "cost.tiers[0].aboveInputTokens",
        ),
        (
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [{"aboveInputTokens": "5", "inputTokens": 1, "outputTokens": 1}],
            },
            "cost.tiers[0].aboveInputTokens",
        ),
        ({"inputTokens": 1, "outputTokens": 2, "cachedInputTokens": -1}, "cost.cachedInputTokens: must be >= 0"),
        ({"inputTokens": 1, "outputTokens": 2, "cacheWriteTokens": "NaN"}, "cost.cacheWriteTokens: must be finite"),
        ({"inputTokens": 1, "outputTokens": 2, "cachedInputToken": 0}, "cost.cachedInputToken: unknown field"),
    ],
)
def test_invalid_prices_raise_config_error_naming_the_path(
    registry: EnhancedModelRegistry, cost: dict[str, Any], path: str
) -> None:
    with pytest.raises(ConfigError) as info:
        registry.register_model(define("bad", cost))
    assert path in str(info.value)
    assert "model (id 'bad')" in str(info.value)
    assert len(registry) == 0


# ------------------------------------------------------------------ providers' usage objects


def test_usage_from_openai_chat_completions_dict_and_object() -> None:
    as_dict = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    expected = {"input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 1024}
    assert usage_from_openai(as_dict) == expected
    as_object = SimpleNamespace(
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        prompt_tokens_details=SimpleNamespace(cached_tokens=1024, audio_tokens=0),
    )
    assert usage_from_openai(as_object) == expected
    # details missing or None: nothing cached
    assert usage_from_openai(SimpleNamespace(prompt_tokens=10, completion_tokens=2, prompt_tokens_details=None)) == {
        "input_tokens": 10,
        "output_tokens": 2,
        "cached_input_tokens": 0,
    }
    assert usage_from_openai({"prompt_tokens": 10, "completion_tokens": 2}) == {
        "input_tokens": 10,
        "output_tokens": 2,
        "cached_input_tokens": 0,
    }


def test_usage_from_openai_responses_dict_and_object() -> None:
    as_dict = {
        "input_tokens": 5000,
        "output_tokens": 700,
        "total_tokens": 5700,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens_details": {"reasoning_tokens": 500},
    }
    expected = {"input_tokens": 5000, "output_tokens": 700, "cached_input_tokens": 4096}
    assert usage_from_openai(as_dict) == expected
    as_object = SimpleNamespace(
        input_tokens=5000,
        output_tokens=700,
        total_tokens=5700,
        input_tokens_details=SimpleNamespace(cached_tokens=4096),
        output_tokens_details=SimpleNamespace(reasoning_tokens=500),
    )
    assert usage_from_openai(as_object) == expected


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 101}},
        {"input_tokens": 100, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 101}},
        {"prompt_tokens": -1, "completion_tokens": 1},
        {"prompt_tokens": 10, "completion_tokens": True},
        {"input_tokens": "10", "output_tokens": 1},
        SimpleNamespace(prompt_tokens=10, completion_tokens=1.0),
    ],
)
def test_usage_from_openai_rejects_bad_counts(usage: Any) -> None:
    with pytest.raises(InvalidUsageError, match="OpenAI usage"):
        usage_from_openai(usage)


def test_usage_from_openai_feeds_record_usage(priced: EnhancedModelRegistry) -> None:
    usage = SimpleNamespace(
        prompt_tokens=10_000, completion_tokens=500, prompt_tokens_details=SimpleNamespace(cached_tokens=8000)
    )
    # 2000 * 2.50 + 8000 * 1.25 + 500 * 10 = 20000 (the "cached" rule)
    assert priced.record_usage("openai:cached", **usage_from_openai(usage)) == Decimal("0.02")


def test_usage_from_anthropic_adds_cache_tokens_to_input() -> None:
    as_dict = {
        "input_tokens": 50,
        "output_tokens": 200,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 300,
    }
    expected = {"input_tokens": 1350, "output_tokens": 200, "cached_input_tokens": 1000, "cache_write_tokens": 300}
    assert usage_from_anthropic(as_dict) == expected
    as_object = SimpleNamespace(
        input_tokens=50,
        output_tokens=200,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=300,
        server_tool_use=None,
        service_tier="standard",
    )
    assert usage_from_anthropic(as_object) == expected | {"service_tier": "standard"}  # Anthropic reports it here
    # the SDK leaves the cache fields None when caching is off
    plain = SimpleNamespace(
        input_tokens=50, output_tokens=20, cache_read_input_tokens=None, cache_creation_input_tokens=None
    )
    assert usage_from_anthropic(plain) == {
        "input_tokens": 50,
        "output_tokens": 20,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
    }
    assert usage_from_anthropic({"input_tokens": 50, "output_tokens": 20})["cache_write_tokens"] == 0


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -1, "output_tokens": 1},
        {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -3},
        {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 2.0},
        SimpleNamespace(input_tokens=1, output_tokens=False),
    ],
)
def test_usage_from_anthropic_rejects_bad_counts(usage: Any) -> None:
    with pytest.raises(InvalidUsageError, match="Anthropic usage"):
        usage_from_anthropic(usage)


def test_usage_from_anthropic_feeds_record_usage_and_commit(priced: EnhancedModelRegistry) -> None:
    usage = SimpleNamespace(
        input_tokens=50, output_tokens=200, cache_read_input_tokens=1000, cache_creation_input_tokens=300
    )
    key = "openai:anthropic"
    # 50 * 3 + 1000 * 0.30 + 300 * 3.75 + 200 * 15 = 4575 (the "anthropic" rule)
    assert priced.record_usage(key, **usage_from_anthropic(usage)) == Decimal("0.004575")
    reservation = priced.acquire(key, 1350, 1000)
    args = usage_from_anthropic(usage)
    assert reservation.commit(args.pop("output_tokens"), **args) == Decimal("0.004575")
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.total_cost == Decimal("0.00915")
    assert stats.total_cached_input_tokens == 2000
    assert stats.total_cache_write_tokens == 600


# ------------------------------------------------------------------ unpriced models


@pytest.fixture
def unpriced(registry: EnhancedModelRegistry) -> str:
    return registry.register_model(define("mystery", None, rateLimit={"requestsPerMinute": 1}))


def test_unpriced_model_estimate_raises(registry: EnhancedModelRegistry, unpriced: str) -> None:
    with pytest.raises(UnpricedModelError, match="no price") as info:
        registry.estimate_cost(unpriced, 1000, 100)
    assert isinstance(info.value, RegistryError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnpricedModelError):
        registry.estimate_cost(unpriced, 0, 0)  # not even $0 for nothing


def test_unpriced_model_record_usage_raises_and_records_nothing(registry: EnhancedModelRegistry, unpriced: str) -> None:
    events = EventRecorder().attach(registry)
    with pytest.raises(UnpricedModelError):
        registry.record_usage(unpriced, 1000, 100)
    with pytest.raises(UnpricedModelError):
        registry.record_usage(unpriced, 1000, 100, False)
    stats = registry.get_usage_stats(unpriced)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens, stats.total_cost) == (0, 0, Decimal(0))
    assert registry.get_usage_history(unpriced) == []
    assert events.of("usage-recorded") == []
    assert registry.check_rate_limit(unpriced, 1).allowed  # the rate-limit window took nothing either


def test_unpriced_model_commit_raises_and_the_reservation_stays_open(
    registry: EnhancedModelRegistry, unpriced: str
) -> None:
    reservation = registry.acquire(unpriced, 1000, 100)  # no budget applies: admitted
    with pytest.raises(UnpricedModelError):
        reservation.commit(50)
    assert reservation.open
    assert reservation.cost is None
    stats = registry.get_usage_stats(unpriced)
    assert stats is not None
    assert stats.request_count == 0
    assert registry.get_usage_history(unpriced) == []
    assert not registry.check_rate_limit(unpriced, 1).allowed  # still held: 1 request per minute
    reservation.cancel()
    assert reservation.state == "cancelled"
    assert registry.check_rate_limit(unpriced, 1).allowed


def test_unpriced_model_leaving_the_block_by_an_exception_keeps_the_callers_exception(
    registry: EnhancedModelRegistry, unpriced: str
) -> None:
    # The failure cannot be recorded (no price): the reservation is given back and the caller's exception wins.
    reservation = registry.acquire(unpriced, 1000, 100)
    with pytest.raises(TimeoutError, match="provider timed out"), reservation:
        raise TimeoutError("the provider timed out")
    assert reservation.state == "cancelled"
    assert registry.check_rate_limit(unpriced, 1).allowed
    stats = registry.get_usage_stats(unpriced)
    assert stats is not None
    assert stats.request_count == 0


def test_a_missing_cost_is_an_error_not_a_free_model(registry: EnhancedModelRegistry) -> None:
    definition = define("nocost", None)
    del definition["cost"]
    with pytest.raises(ConfigError, match="cost: required field is missing"):
        registry.register_model(definition)


def test_unpriced_models_are_excluded_from_cost_search_and_ranked_last(
    registry: EnhancedModelRegistry, unpriced: str
) -> None:
    expensive = registry.register_model(define("expensive", {"inputTokens": 30, "outputTokens": 60}))
    free = registry.register_model(LLAMA)
    # cost per token: expensive (30 + 60) / 2000 = 0.045; free 0; unpriced unknown
    found = [e.key for e in registry.search_models(max_cost_per_token=10**9)]
    assert found == [expensive, free]
    assert [e.key for e in registry.search_models(max_cost_per_token=0)] == [free]
    ranked = [e.key for e in registry.get_most_cost_effective_models()]
    assert ranked == [free, expensive, unpriced]
    assert [e.key for e in registry.get_most_cost_effective_models(limit=2)] == [free, expensive]
    stats = registry.get_statistics()
    assert stats.total_models == 3
    assert stats.total_cost == Decimal(0)


def test_unpriced_model_survives_save_load_and_export(
    registry: EnhancedModelRegistry, unpriced: str, clock: FakeClock
) -> None:
    entry = registry.get_model(unpriced)
    assert entry is not None
    assert entry.cost is None
    assert entry.usage_stats.currency == "USD"
    registry.save()
    saved = json.loads(registry.persistence_path.read_text())
    assert saved["models"][0]["cost"] is None
    with EnhancedModelRegistry(persistence_path=registry.persistence_path, auto_save=False, clock=clock) as other:
        assert other.load() == 1
        loaded = other.get_model(unpriced)
        assert loaded is not None
        assert loaded.cost is None
        with pytest.raises(UnpricedModelError):
            other.estimate_cost(unpriced, 1, 1)
    with EnhancedModelRegistry(auto_save=False, clock=clock) as third:
        assert third.import_from_json(registry.export_to_json()) == 1
        with pytest.raises(UnpricedModelError):
            third.record_usage(unpriced, 1, 1)


def test_pricing_an_unpriced_model_makes_it_billable(registry: EnhancedModelRegistry, unpriced: str) -> None:
    registry.update_model(unpriced, {"cost": {"inputTokens": 1, "outputTokens": 2}})
    # (1000 * 1 + 100 * 2) / 1000
    assert registry.record_usage(unpriced, 1000, 100) == Decimal("1.2")


# ------------------------------------------------------------------ snapshots


def test_snapshot_cost_tiers_are_independent_copies(priced: EnhancedModelRegistry) -> None:
    key = "openai:service"
    before = priced.estimate_cost(key, 150_000, 0)  # 150000 * 4 = 600000 -> 0.6
    entry = priced.get_model(key)
    assert entry is not None
    assert entry.cost is not None
    assert entry.cost.tiers is not None
    assert entry.cost.service_tiers is not None
    entry.cost.tiers[0].input_tokens = Decimal(999)
    entry.cost.tiers.append(entry.cost.tiers[0])
    entry.cost.service_tiers["priority"].input_tokens = Decimal(999)
    priority_tiers = entry.cost.service_tiers["priority"].tiers
    assert priority_tiers is not None
    priority_tiers[0].input_tokens = Decimal(999)
    del entry.cost.service_tiers["batch"]
    assert priced.estimate_cost(key, 150_000, 0) == before == Decimal("0.6")
    assert priced.estimate_cost(key, 100_001, 0, service_tier="priority") == Decimal("0.700007")
    assert priced.estimate_cost(key, 150_000, 0, service_tier="batch") == Decimal("0.15")
    again = priced.get_model(key)
    assert again is not None
    assert again.cost is not None
    assert again.cost.tiers is not None
    assert again.cost.service_tiers is not None
    assert len(again.cost.tiers) == 1
    assert again.cost.tiers[0].input_tokens == Decimal(4)
    assert set(again.cost.service_tiers) == {"batch", "flex", "priority"}
    listed = priced.list_models()[-1]
    assert listed.cost is not None
    assert listed.cost.tiers is not None
    assert listed.cost.tiers[0].input_tokens == Decimal(4)


def test_registering_an_instance_does_not_share_its_tiers(registry: EnhancedModelRegistry) -> None:
    info = ExtendedModelInfo.model_validate(define("tiered", TIERED))
    key = registry.register_model(info)
    assert info.cost is not None
    assert info.cost.tiers is not None
    info.cost.tiers[0].input_tokens = Decimal(999)
    # 100001 * 2 + 1000 * 8 = 208002, unchanged
    assert registry.estimate_cost(key, 100_001, 1000) == Decimal("0.208002")


def _changed_after_validation(case: str) -> ExtendedModelInfo:
    """A validated instance whose cost containers the caller changed afterwards (lists and dicts are not guarded
    by validate_assignment)."""
    info = ExtendedModelInfo.model_validate(define("changed", SERVICE if case == "unknown service tier" else TIERED))
    assert info.cost is not None
    if case == "unsorted tiers":
        assert info.cost.tiers is not None
        info.cost.tiers.append(PriceTier(above_input_tokens=50_000, input_tokens=9, output_tokens=9))
    elif case == "duplicate thresholds":
        assert info.cost.tiers is not None
        info.cost.tiers.append(PriceTier(above_input_tokens=100_000, input_tokens=0, output_tokens=0))
    else:
        assert info.cost.service_tiers is not None
        info.cost.service_tiers["turbo"] = info.cost.service_tiers["batch"]  # type: ignore[index]
    return info


CHANGED_CASES = ["unsorted tiers", "duplicate thresholds", "unknown service tier"]


def _check_registration(registry: EnhancedModelRegistry, register: Any, case: str) -> None:
    info = _changed_after_validation(case)
    if case == "unsorted tiers":  # sorted again: the highest exceeded threshold (100000) wins, 150000 * 2
        register(info)
        assert registry.estimate_cost("openai:changed", 150_000, 0) == Decimal("0.3")
        registry.save()
        assert registry.load() == 1  # what was saved loads back
    else:
        with pytest.raises(ConfigError, match=r"tier thresholds must be distinct|service_?[tT]iers\.turbo"):
            register(info)
        assert len(registry) == 0


@pytest.mark.parametrize("case", CHANGED_CASES)
def test_register_model_validates_cost_containers_changed_after_validation(
    registry: EnhancedModelRegistry, case: str
) -> None:
    _check_registration(registry, registry.register_model, case)


@pytest.mark.parametrize("case", CHANGED_CASES)
def test_register_models_validates_cost_containers_changed_after_validation(
    registry: EnhancedModelRegistry, case: str
) -> None:
    _check_registration(registry, lambda info: registry.register_models([info]), case)


def test_register_models_with_an_instance_does_not_share_its_tiers(registry: EnhancedModelRegistry) -> None:
    info = ExtendedModelInfo.model_validate(define("tiered", TIERED))
    (key,) = registry.register_models([info])
    assert info.cost is not None
    assert info.cost.tiers is not None
    info.cost.tiers[0].input_tokens = Decimal(999)
    info.cost.tiers.clear()
    # 100001 * 2 + 1000 * 8 = 208002, unchanged
    assert registry.estimate_cost(key, 100_001, 1000) == Decimal("0.208002")


def test_tiers_and_service_tiers_survive_export_and_import(priced: EnhancedModelRegistry, clock: FakeClock) -> None:
    text = priced.export_to_json()
    with EnhancedModelRegistry(auto_save=False, clock=clock) as other:
        assert other.import_from_json(text) == len(COSTS)
        for name, inp, out, kwargs, expected in RULES:
            assert other.estimate_cost(f"openai:{name}", inp, out, **kwargs) == Decimal(expected)


# ------------------------------------------------------------------ docs/pricing.md

DOC = Path(__file__).resolve().parents[1] / "docs" / "pricing.md"


def test_the_examples_of_docs_pricing_md_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 10
    assert run_blocks(DOC.name, blocks) >= 40
