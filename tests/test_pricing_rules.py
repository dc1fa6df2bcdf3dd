"""Regression tests of the LiteLLM-compatible pricing rules (issue 9), one group per rule of
``noa_ai_provider.cost.request_rates``:

1. per-kind long-context tiers: each kind of price carries upward across every threshold crossed;
2. ``flex`` / ``priority`` stand on the standard prices, at the base and at every threshold of either ladder;
3. 1-hour cache writes (``cache_write_1h_tokens``), defaulting to the cache-write price in force;
4. ``batch``: half the standard prices, or the batch prices with their own fallbacks;
5. the service-tier names providers report back.

Every expected cost is an exact ``Decimal`` computed by hand in the comment next to it. Prices are per 1,000,000
tokens, so a cost is ``(sum of tokens * price) / 1_000_000``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, InvalidUsageError, ModelCost
from noa_ai_provider.cost import billed_service_tier, request_cost, request_rates, worst_case_cost
from noa_ai_provider.testing import EventRecorder, FakeClock

M = 1_000_000

# The 1-hour cache-write price is written with its Python field name in these price sets, which every version of
# the schema accepts; test_cache_write_1h_json_name checks the camelCase JSON name on its own.
W1H = "cache_write_1h_tokens"


def define(model_id: str, cost: dict[str, Any]) -> dict[str, Any]:
    return {"id": model_id, "name": model_id, "provider": "openai", "version": "1.0.0", "cost": cost}


# Rule 1. A tier that states only an output price.
OUTPUT_ONLY = {
    "inputTokens": 1,
    "outputTokens": 2,
    "per": M,
    "tiers": [{"aboveInputTokens": 32000, "outputTokens": 18}],
}
# Rule 1. Each tier changes one or two kinds; the others carry upward from below.
LADDER = {
    "inputTokens": "1",
    "outputTokens": "2",
    "cachedInputTokens": "0.5",
    "cacheWriteTokens": "1.25",
    "per": M,
    "tiers": [
        {"aboveInputTokens": 30_000, "cacheWriteTokens": "3"},
        {"aboveInputTokens": 10_000, "inputTokens": "2"},
        {"aboveInputTokens": 20_000, "outputTokens": "6", "cachedInputTokens": "0.2"},
    ],
}
# Rule 1. No cache price at the base: cache tokens bill at the input price in force until a tier states one.
LATE_CACHE = {
    "inputTokens": "1",
    "outputTokens": "2",
    "per": M,
    "tiers": [
        {"aboveInputTokens": 10_000, "inputTokens": "3"},
        {"aboveInputTokens": 20_000, "cachedInputTokens": "0.3"},
    ],
}
# Rule 2. flex states no cache price and no tier; priority states no cache price, has a tier of its own at a
# threshold the standard ladder lacks (50,000) and one at the standard threshold (100,000) that states only output.
SERVICE = {
    "inputTokens": "2",
    "outputTokens": "8",
    "cachedInputTokens": "0.5",
    "cacheWriteTokens": "2.5",
    "per": M,
    "tiers": [{"aboveInputTokens": 100_000, "inputTokens": "4", "outputTokens": "16", "cachedInputTokens": "1"}],
    "serviceTiers": {
        "flex": {"inputTokens": "1", "outputTokens": "4"},
        "priority": {
            "inputTokens": "3.5",
            "outputTokens": "14",
            "tiers": [
                {"aboveInputTokens": 50_000, "cachedInputTokens": "0.7"},
                {"aboveInputTokens": 100_000, "outputTokens": "28"},
            ],
        },
    },
}
# Rules 3 and 4. Anthropic-style (Claude Sonnet 4.5's published prices): 5-minute writes at 1.25x the input price,
# 1-hour writes at 2x, reads at 0.1x, and long-context prices above 200,000 input tokens.
SONNET = {
    "inputTokens": "3",
    "outputTokens": "15",
    "cachedInputTokens": "0.30",
    "cacheWriteTokens": "3.75",
    W1H: "6",
    "per": M,
    "tiers": [
        {
            "aboveInputTokens": 200_000,
            "inputTokens": "6",
            "outputTokens": "22.5",
            "cachedInputTokens": "0.6",
            "cacheWriteTokens": "7.5",
            W1H: "12",
        }
    ],
}
# Rule 4. The same with batch prices that state only input and output.
SONNET_BATCH = {**SONNET, "serviceTiers": {"batch": {"inputTokens": "1.5", "outputTokens": "7.5"}}}
# Rule 4. Batch prices with a 5-minute write price but no 1-hour one.
SONNET_BATCH_WRITE = {
    **SONNET,
    "serviceTiers": {"batch": {"inputTokens": "1.5", "outputTokens": "7.5", "cacheWriteTokens": "1.875"}},
}
# Rule 4. Batch prices stating every kind, as Anthropic bills them.
SONNET_BATCH_FULL = {
    **SONNET,
    "serviceTiers": {
        "batch": {
            "inputTokens": "1.5",
            "outputTokens": "7.5",
            "cachedInputTokens": "0.15",
            "cacheWriteTokens": "1.875",
            W1H: "3",
        }
    },
}
# Rule 4. Batch prices that state only the input price.
BATCH_INPUT_ONLY = {**SONNET, "serviceTiers": {"batch": {"inputTokens": "1.5"}}}
# Rule 3. Cache prices without a 1-hour one; and no cache price at all.
ANTHROPIC_5M = {
    "inputTokens": "3",
    "outputTokens": "15",
    "cachedInputTokens": "0.30",
    "cacheWriteTokens": "3.75",
    "per": M,
}
NO_CACHE = {"inputTokens": "2", "outputTokens": "8", "per": M}
FREE_1H = {"inputTokens": "2", "outputTokens": "8", "cacheWriteTokens": "2.5", W1H: 0, "per": M}
# Rule 3. A tier that states only the 1-hour write price.
TIER_1H = {
    "inputTokens": "1",
    "outputTokens": "2",
    "cacheWriteTokens": "1.25",
    "per": M,
    "tiers": [{"aboveInputTokens": 64_000, W1H: "5"}],
}

COSTS: dict[str, dict[str, Any]] = {
    "output-only": OUTPUT_ONLY,
    "ladder": LADDER,
    "late-cache": LATE_CACHE,
    "service": SERVICE,
    "sonnet": SONNET,
    "sonnet-batch": SONNET_BATCH,
    "sonnet-batch-write": SONNET_BATCH_WRITE,
    "sonnet-batch-full": SONNET_BATCH_FULL,
    "batch-input-only": BATCH_INPUT_ONLY,
    "anthropic-5m": ANTHROPIC_5M,
    "no-cache": NO_CACHE,
    "free-1h": FREE_1H,
    "tier-1h": TIER_1H,
}


@pytest.fixture
def priced(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    registry.register_models([define(name, cost) for name, cost in COSTS.items()])
    return registry


def kw(cached: int = 0, written: int = 0, written_1h: int = 0, tier: str | None = None) -> dict[str, Any]:
    """The keywords of estimate_cost, record_usage and request_cost, leaving out the zero counts."""
    out: dict[str, Any] = {}
    if cached:
        out["cached_input_tokens"] = cached
    if written:
        out["cache_write_tokens"] = written
    if written_1h:
        out["cache_write_1h_tokens"] = written_1h
    if tier is not None:
        out["service_tier"] = tier
    return out


# (model, input, output, keywords, expected cost); the hand computation above each.
RULES: list[tuple[str, int, int, dict[str, Any], str]] = [
    # ---- rule 1: per-kind tiers
    # the output-only tier: 40000 * 1 (input carried from the base) + 1000 * 18 = 40000 + 18000 = 58000
    ("output-only", 40_000, 1000, {}, "0.058"),
    # at the threshold, not over it: 32000 * 1 + 1000 * 2 = 34000
    ("output-only", 32_000, 1000, {}, "0.034"),
    # no cache price anywhere: cached tokens at the input price in force (1): 40000 * 1 + 1000 * 18 = 58000
    ("output-only", 40_000, 1000, kw(cached=10_000), "0.058"),
    # ladder, above 10000 only: input 2; output 2, reads 0.5, writes 1.25 carried from the base:
    # 5000 * 2 + 5000 * 0.5 + 5000 * 1.25 + 1000 * 2 = 10000 + 2500 + 6250 + 2000 = 20750
    ("ladder", 15_000, 1000, kw(cached=5000, written=5000), "0.02075"),
    # above 20000: input 2 (from the 10000 tier), output 6 and reads 0.2 (20000 tier), writes still 1.25 (base):
    # 10000 * 2 + 10000 * 0.2 + 5000 * 1.25 + 1000 * 6 = 20000 + 2000 + 6250 + 6000 = 34250
    ("ladder", 25_000, 1000, kw(cached=10_000, written=5000), "0.03425"),
    # above 30000: writes 3 (30000 tier), the rest carried from the two tiers below:
    # 20000 * 2 + 10000 * 0.2 + 5000 * 3 + 1000 * 6 = 40000 + 2000 + 15000 + 6000 = 63000
    ("ladder", 35_000, 1000, kw(cached=10_000, written=5000), "0.063"),
    # no 1-hour price: the write price in force (3 above 30000): 25000 * 2 + 5000 * 0.2 + 5000 * 3 = 50000 + 1000
    # + 15000 = 66000
    ("ladder", 35_000, 0, kw(cached=5000, written_1h=5000), "0.066"),
    # late-cache: no cache price in force below 20000: reads at the input price in force (3): 15000 * 3 = 45000
    ("late-cache", 15_000, 0, kw(cached=5000), "0.045"),
    # above 20000 the tier's read price (0.3); input 3 carried: 20000 * 3 + 5000 * 0.3 = 60000 + 1500 = 61500
    ("late-cache", 25_000, 0, kw(cached=5000), "0.0615"),
    # no write price anywhere: writes at the input price in force (3): 25000 * 3 = 75000
    ("late-cache", 25_000, 0, kw(written=5000), "0.075"),
    # ---- rule 2: flex and priority stand on the standard prices
    # standard, for comparison: 5000 * 2 + 4000 * 0.5 + 1000 * 2.5 + 1000 * 8 = 10000 + 2000 + 2500 + 8000 = 22500
    ("service", 10_000, 1000, kw(cached=4000, written=1000), "0.0225"),
    # flex states no cache price: the standard ones (0.5, 2.5), not flex's input price:
    # 5000 * 1 + 4000 * 0.5 + 1000 * 2.5 + 1000 * 4 = 5000 + 2000 + 2500 + 4000 = 13500
    ("service", 10_000, 1000, kw(cached=4000, written=1000, tier="flex"), "0.0135"),
    # standard above 100000: 100000 * 4 + 50000 * 1 + 1000 * 16 = 400000 + 50000 + 16000 = 466000
    ("service", 150_000, 1000, kw(cached=50_000), "0.466"),
    # flex has no long-context price: above 100000 the standard ones (4, 16, 1), as for a standard request
    ("service", 150_000, 1000, kw(cached=50_000, tier="flex"), "0.466"),
    # flex at the threshold, not over it: 100000 * 1 + 1000 * 4 = 104000
    ("service", 100_000, 1000, {"service_tier": "flex"}, "0.104"),
    # priority at the base: reads at the standard 0.5: 6000 * 3.5 + 4000 * 0.5 + 1000 * 14 = 21000 + 2000 + 14000
    ("service", 10_000, 1000, kw(cached=4000, tier="priority"), "0.037"),
    # priority writes at the standard 2.5: 8000 * 3.5 + 2000 * 2.5 = 28000 + 5000 = 33000
    ("service", 10_000, 0, kw(written=2000, tier="priority"), "0.033"),
    # priority's own tier above 50000 (a threshold only its ladder has) states reads at 0.7:
    # 40000 * 3.5 + 20000 * 0.7 + 1000 * 14 = 140000 + 14000 + 14000 = 168000
    ("service", 60_000, 1000, kw(cached=20_000, tier="priority"), "0.168"),
    # above 100000: priority's own output (28); input 4 and reads 1 are the standard long-context prices (priority
    # states none at 100000), not priority's 3.5 and 0.7 from below:
    # 100000 * 4 + 50000 * 1 + 1000 * 28 = 400000 + 50000 + 28000 = 478000
    ("service", 150_000, 1000, kw(cached=50_000, tier="priority"), "0.478"),
    # ---- rule 3: 1-hour cache writes
    # 100000 1-hour write tokens at $6: 100000 * 6 = 600000
    ("sonnet", 100_000, 0, kw(written_1h=100_000), "0.6"),
    # every kind: 50 * 3 + 1000 * 0.30 + 2000 * 3.75 + 3000 * 6 + 200 * 15 = 150 + 300 + 7500 + 18000 + 3000 = 28950
    ("sonnet", 6050, 200, kw(cached=1000, written=2000, written_1h=3000), "0.02895"),
    # above 200000 the tier's 1-hour price (12): 200000 * 6 + 1 * 12 = 1200000 + 12 = 1200012
    ("sonnet", 200_001, 0, kw(written_1h=1), "1.200012"),
    # no 1-hour price: the cache-write price (3.75): 100000 * 3.75 = 375000
    ("anthropic-5m", 100_000, 0, kw(written_1h=100_000), "0.375"),
    # no cache-write price either: the input price (2): 100000 * 2 = 200000
    ("no-cache", 100_000, 0, kw(written_1h=100_000), "0.2"),
    # an explicit 0 is free, while 5-minute writes bill: 1000 * 2 + 1000 * 2.5 + 1000 * 0 = 4500
    ("free-1h", 3000, 0, kw(written=1000, written_1h=1000), "0.0045"),
    # a tier stating only the 1-hour price: below it the base write price (1.25):
    # 64000 * 1.25 = 80000
    ("tier-1h", 64_000, 0, kw(written_1h=64_000), "0.08"),
    # above it 5 for 1-hour writes, 1.25 still for 5-minute ones:
    # 1 * 1 + 32000 * 1.25 + 32000 * 5 = 1 + 40000 + 160000 = 200001
    ("tier-1h", 64_001, 0, kw(written=32_000, written_1h=32_000), "0.200001"),
    # ---- rule 4: batch
    # no batch prices: half of every standard price. Standard: 6000 * 3 + 2000 * 0.3 + 1000 * 3.75 + 1000 * 6
    # + 1000 * 15 = 18000 + 600 + 3750 + 6000 + 15000 = 43350; batch: 43350 / 2 = 21675
    ("sonnet", 10_000, 1000, kw(cached=2000, written=1000, written_1h=1000), "0.04335"),
    ("sonnet", 10_000, 1000, kw(cached=2000, written=1000, written_1h=1000, tier="batch"), "0.021675"),
    # long-context included: half of 6, 22.5, 0.6, 7.5 = 3, 11.25, 0.3, 3.75:
    # 100000 * 3 + 100000 * 0.3 + 50000 * 3.75 + 1000 * 11.25 = 300000 + 30000 + 187500 + 11250 = 528750
    ("sonnet", 250_000, 1000, kw(cached=100_000, written=50_000, tier="batch"), "0.52875"),
    # batch prices without cache prices: reads at half the standard read price (0.15), 5-minute and 1-hour writes
    # at the batch input price (1.5): 6000 * 1.5 + 2000 * 0.15 + 1000 * 1.5 + 1000 * 1.5 + 1000 * 7.5
    # = 9000 + 300 + 1500 + 1500 + 7500 = 19800
    ("sonnet-batch", 10_000, 1000, kw(cached=2000, written=1000, written_1h=1000, tier="batch"), "0.0198"),
    # batch's own input price holds above the standard threshold (batch has no tier): 250000 * 1.5 = 375000
    ("sonnet-batch", 250_000, 0, {"service_tier": "batch"}, "0.375"),
    # a batch 5-minute write price and no 1-hour one: 1-hour writes at the batch write price (1.875):
    # 9000 + 300 + 1875 + 1875 + 7500 = 20550
    ("sonnet-batch-write", 10_000, 1000, kw(cached=2000, written=1000, written_1h=1000, tier="batch"), "0.02055"),
    # every batch price stated: 9000 + 2000 * 0.15 + 1000 * 1.875 + 1000 * 3 + 7500 = 9000 + 300 + 1875 + 3000
    # + 7500 = 21675, as half the standard prices give
    ("sonnet-batch-full", 10_000, 1000, kw(cached=2000, written=1000, written_1h=1000, tier="batch"), "0.021675"),
    # batch states only input: output at half the standard (7.5), writes at the batch input price (1.5):
    # 9000 * 1.5 + 1000 * 1.5 + 1000 * 7.5 = 13500 + 1500 + 7500 = 22500
    ("batch-input-only", 10_000, 1000, kw(written=1000, tier="batch"), "0.0225"),
    # above 200000: input 1.5 (stated), output half the long-context 22.5 = 11.25: 250000 * 1.5 + 1000 * 11.25
    # = 375000 + 11250 = 386250
    ("batch-input-only", 250_000, 1000, {"service_tier": "batch"}, "0.38625"),
    # a model without tiers or cache prices: 1000 * 1 + 1000 * 4 = 5000 (half of 2 and 8)
    ("no-cache", 1000, 1000, {"service_tier": "batch"}, "0.005"),
    # output-only tier, batch: half of 1 and 18: 40000 * 0.5 + 1000 * 9 = 20000 + 9000 = 29000
    ("output-only", 40_000, 1000, {"service_tier": "batch"}, "0.029"),
]


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_estimate_cost(
    priced: EnhancedModelRegistry, name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str
) -> None:
    got = priced.estimate_cost(f"openai:{name}", inp, out, **kwargs)
    assert got == Decimal(expected)
    assert isinstance(got, Decimal)


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_request_cost(name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str) -> None:
    assert request_cost(ModelCost.model_validate(COSTS[name]), inp, out, **kwargs) == Decimal(expected)


@pytest.mark.parametrize(("name", "inp", "out", "kwargs", "expected"), RULES)
def test_record_usage_counts_both_kinds_of_write(
    priced: EnhancedModelRegistry, name: str, inp: int, out: int, kwargs: dict[str, Any], expected: str
) -> None:
    key = f"openai:{name}"
    assert priced.record_usage(key, inp, out, **kwargs) == Decimal(expected)
    stats = priced.get_usage_stats(key)
    assert stats is not None
    written = kwargs.get("cache_write_tokens", 0) + kwargs.get("cache_write_1h_tokens", 0)
    assert (stats.total_input_tokens, stats.total_cached_input_tokens, stats.total_cache_write_tokens) == (
        inp,
        kwargs.get("cached_input_tokens", 0),
        written,
    )
    assert stats.total_cost == Decimal(expected)
    (entry,) = priced.get_usage_history(key)
    assert (entry.cache_write_tokens, entry.cost) == (written, Decimal(expected))


def test_rates_of_a_tier_that_states_only_output() -> None:
    rates = request_rates(ModelCost.model_validate(OUTPUT_ONLY), 40_000)
    assert (rates.input, rates.output, rates.cache_read, rates.cache_write, rates.cache_write_1h) == tuple(
        map(Decimal, (1, 18, 1, 1, 1))
    )


def test_rates_carry_each_kind_across_thresholds() -> None:
    ladder = ModelCost.model_validate(LADDER)
    got = [request_rates(ladder, n) for n in (10_000, 10_001, 20_001, 30_001)]
    as_tuples = [(r.input, r.output, r.cache_read, r.cache_write, r.cache_write_1h) for r in got]
    d = Decimal
    assert as_tuples == [
        (d(1), d(2), d("0.5"), d("1.25"), d("1.25")),
        (d(2), d(2), d("0.5"), d("1.25"), d("1.25")),
        (d(2), d(6), d("0.2"), d("1.25"), d("1.25")),
        (d(2), d(6), d("0.2"), d(3), d(3)),
    ]


# ------------------------------------------------------------------ rule 5: service-tier names


@pytest.mark.parametrize("name", ["default", "auto", "standard", "standard_only", "DEFAULT", " Standard "])
def test_standard_names_bill_standard_prices(priced: EnhancedModelRegistry, name: str) -> None:
    # 5000 * 2 + 4000 * 0.5 + 1000 * 2.5 + 1000 * 8 = 22500 (the standard request of RULES)
    assert priced.estimate_cost("openai:service", 10_000, 1000, **kw(4000, 1000, tier=name)) == Decimal("0.0225")
    assert billed_service_tier(ModelCost.model_validate(SERVICE), name) is None


@pytest.mark.parametrize("name", ["priority", "scale", "Scale", "PRIORITY"])
def test_scale_and_priority_bill_the_priority_prices(priced: EnhancedModelRegistry, name: str) -> None:
    # 6000 * 3.5 + 4000 * 0.5 + 1000 * 14 = 37000 (the priority request of RULES)
    assert priced.estimate_cost("openai:service", 10_000, 1000, **kw(4000, tier=name)) == Decimal("0.037")
    assert billed_service_tier(ModelCost.model_validate(SERVICE), name) == "priority"


@pytest.mark.parametrize("name", ["priority", "scale"])
def test_scale_and_priority_without_priority_prices_bill_standard(priced: EnhancedModelRegistry, name: str) -> None:
    key = "openai:anthropic-5m"
    # 50 * 3 + 1000 * 0.30 + 300 * 3.75 + 200 * 15 = 150 + 300 + 1125 + 3000 = 4575
    assert priced.record_usage(key, 1350, 200, cached_input_tokens=1000, cache_write_tokens=300, service_tier=name) == (
        Decimal("0.004575")
    )
    assert billed_service_tier(ModelCost.model_validate(ANTHROPIC_5M), name) is None
    reservation = priced.acquire(key, 1350, 200)
    assert reservation.commit(200, cached_input_tokens=1000, cache_write_tokens=300, service_tier=name) == Decimal(
        "0.004575"
    )


def test_batch_name_without_batch_prices_bills_half(priced: EnhancedModelRegistry) -> None:
    assert billed_service_tier(ModelCost.model_validate(NO_CACHE), "Batch") == "batch"
    # half of 2 and 8: 1000 * 1 + 1000 * 4 = 5000
    assert priced.estimate_cost("openai:no-cache", 1000, 1000, service_tier="BATCH") == Decimal("0.005")


def test_flex_without_flex_prices_raises_and_records_nothing(priced: EnhancedModelRegistry) -> None:
    key = "openai:sonnet-batch"
    events = EventRecorder().attach(priced)
    with pytest.raises(InvalidUsageError, match="not priced for this model"):
        billed_service_tier(ModelCost.model_validate(SONNET_BATCH), "flex")
    with pytest.raises(InvalidUsageError, match="not priced"):
        priced.estimate_cost(key, 1000, 10, service_tier="flex")
    with pytest.raises(InvalidUsageError, match="not priced"):
        priced.record_usage(key, 1000, 10, service_tier="Flex")
    reservation = priced.acquire(key, 1000, 10)
    with pytest.raises(InvalidUsageError, match="not priced"):
        reservation.commit(10, service_tier="flex")
    assert reservation.open
    reservation.cancel()
    with pytest.raises(InvalidUsageError, match="not priced"):
        worst_case_cost(ModelCost.model_validate(SONNET_BATCH), 1000, 10, "flex")
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0
    assert priced.get_usage_history(key) == []
    assert events.of("usage-recorded") == []


@pytest.mark.parametrize("name", ["turbo", "", "on_demand", "premium"])
def test_unknown_names_raise_and_record_nothing(priced: EnhancedModelRegistry, name: str) -> None:
    key = "openai:service"
    with pytest.raises(InvalidUsageError, match="service_tier must be one of"):
        priced.estimate_cost(key, 1000, 10, service_tier=name)
    with pytest.raises(InvalidUsageError, match="service_tier must be one of"):
        priced.record_usage(key, 1000, 10, service_tier=name)
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0


@pytest.mark.parametrize("name", ["turbo", "", "on_demand", "premium"])
def test_unknown_names_raise_in_the_cost_functions(name: str) -> None:
    # billed_service_tier's contract: "Raises InvalidUsageError for an unknown name"; request_cost and
    # worst_case_cost take the same names, so an unknown one must not bill the standard prices silently.
    service = ModelCost.model_validate(SERVICE)
    with pytest.raises(InvalidUsageError, match="service_tier must be one of"):
        billed_service_tier(service, name)
    with pytest.raises(InvalidUsageError, match="service_tier must be one of"):
        request_cost(service, 1000, 10, service_tier=name)
    with pytest.raises(InvalidUsageError, match="service_tier must be one of"):
        worst_case_cost(service, 1000, 10, name)


# ------------------------------------------------------------------ rule 3: 1-hour writes, keywords and counters


def test_cache_write_1h_json_name() -> None:
    # The JSON (camelCase) name of the 1-hour cache-write price is cacheWrite1hTokens (docs/guide.md, pricing.md),
    # at the base, in a tier and in a service tier, and it is what export writes.
    cost = ModelCost.model_validate(
        {
            "inputTokens": "3",
            "outputTokens": "15",
            "cacheWrite1hTokens": "6",
            "tiers": [{"aboveInputTokens": 200_000, "cacheWrite1hTokens": "12"}],
            "serviceTiers": {"batch": {"inputTokens": "1.5", "cacheWrite1hTokens": "3"}},
        }
    )
    assert cost.cache_write_1h_tokens == Decimal(6)
    dumped = cost.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["cacheWrite1hTokens"] == "6"
    assert dumped["tiers"][0] == {"aboveInputTokens": 200_000, "cacheWrite1hTokens": "12"}
    assert dumped["serviceTiers"]["batch"]["cacheWrite1hTokens"] == "3"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cache_write_1h_tokens": -1}, "cache_write_1h_tokens"),
        ({"cache_write_1h_tokens": 1.5}, "cache_write_1h_tokens"),
        ({"cache_write_1h_tokens": True}, "cache_write_1h_tokens"),
        ({"cache_write_1h_tokens": 1001}, "input_tokens includes them"),
        ({"cached_input_tokens": 500, "cache_write_tokens": 300, "cache_write_1h_tokens": 201}, "includes them"),
    ],
)
def test_invalid_1h_counts_raise_and_record_nothing(
    priced: EnhancedModelRegistry, kwargs: dict[str, Any], match: str
) -> None:
    key = "openai:sonnet"
    with pytest.raises(InvalidUsageError, match=match):
        priced.estimate_cost(key, 1000, 10, **kwargs)
    with pytest.raises(InvalidUsageError, match=match):
        priced.record_usage(key, 1000, 10, **kwargs)
    reservation = priced.acquire(key, 1000, 10)
    with pytest.raises(InvalidUsageError, match=match):
        reservation.commit(10, **kwargs)
    assert reservation.open
    reservation.cancel()
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0
    assert priced.get_usage_history(key) == []


def test_cache_write_1h_is_keyword_only(priced: EnhancedModelRegistry) -> None:
    with pytest.raises(TypeError):
        priced.estimate_cost("openai:sonnet", 1000, 10, 0, 0, None, 500)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        priced.record_usage("openai:sonnet", 1000, 10, True, 0, 0, None, 500)  # type: ignore[call-arg]


def test_cache_tokens_equal_to_input_with_1h_writes(priced: EnhancedModelRegistry) -> None:
    # no uncached token: 600 * 0.30 + 300 * 3.75 + 100 * 6 = 180 + 1125 + 600 = 1905
    assert priced.estimate_cost("openai:sonnet", 1000, 0, **kw(600, 300, 100)) == Decimal("0.001905")


def test_reservation_committed_with_1h_writes(priced: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = "openai:sonnet"
    events = EventRecorder().attach(priced)
    priced.set_budget(10, key=key, period="day")
    reservation = priced.acquire(key, 6050, 1000)
    # worst case: every input token at the dearest input-side price, the 1-hour write price (6):
    # 6050 * 6 + 1000 * 15 = 36300 + 15000 = 51300
    assert priced.get_budget_status()[0].reserved == Decimal("0.0513")
    # 50 * 3 + 1000 * 0.30 + 2000 * 3.75 + 3000 * 6 + 200 * 15 = 150 + 300 + 7500 + 18000 + 3000 = 28950
    cost = reservation.commit(200, cached_input_tokens=1000, cache_write_tokens=2000, cache_write_1h_tokens=3000)
    assert cost == Decimal("0.02895")
    assert reservation.cost == Decimal("0.02895")
    assert events.of("usage-recorded")[-1]["cost"] == Decimal("0.02895")
    status = priced.get_budget_status()[0]
    assert (status.spent, status.reserved) == (Decimal("0.02895"), Decimal(0))
    stats = priced.get_usage_stats(key)
    assert stats is not None
    # the 1-hour writes count as cache writes: 2000 + 3000
    assert (stats.total_input_tokens, stats.total_cached_input_tokens, stats.total_cache_write_tokens) == (
        6050,
        1000,
        5000,
    )
    # a reservation committed with input_tokens given: 1000 uncached * 3 + 1000 * 6 = 9000
    with priced.acquire(key, 5000, 0) as other:
        assert other.commit(0, input_tokens=2000, cache_write_1h_tokens=1000) == Decimal("0.009")
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert (stats.total_cache_write_tokens, stats.total_cost) == (6000, Decimal("0.03795"))


def test_usage_counters_count_1h_writes_and_survive_save_and_load(
    priced: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = "openai:sonnet"
    priced.record_usage(key, 6050, 200, **kw(1000, 2000, 3000))  # 0.02895, see RULES
    priced.record_usage(key, 1000, 0, False, cache_write_1h_tokens=1000)  # failed, still billed: 1000 * 6 = 6000
    priced.record_usage(key, 500, 0, cache_write_tokens=500)  # 500 * 3.75 = 1875
    stats = priced.get_usage_stats(key)
    assert stats is not None
    assert stats.total_input_tokens == 6050 + 1000 + 500
    assert stats.total_cached_input_tokens == 1000
    assert stats.total_cache_write_tokens == 2000 + 3000 + 1000 + 500
    # 0.02895 + 0.006 + 0.001875
    assert stats.total_cost == Decimal("0.036825")
    (day,) = priced.get_usage_history(key)
    assert (day.cache_write_tokens, day.requests, day.cost) == (6500, 3, Decimal("0.036825"))
    priced.save()
    with EnhancedModelRegistry(persistence_path=priced.persistence_path, auto_save=False, clock=clock) as other:
        other.load()
        assert other.get_usage_stats(key) == stats
        assert other.get_usage_history(key) == [day]


# ------------------------------------------------------------------ worst case (what acquire reserves)


def test_worst_case_cost_takes_the_1h_write_price() -> None:
    sonnet = ModelCost.model_validate(SONNET)
    # the 1-hour write price (6) is the dearest input-side price: 1000 * 6 + 100 * 15 = 6000 + 1500 = 7500
    assert worst_case_cost(sonnet, 1000, 100) == Decimal("0.0075")
    # above the threshold, the tier's 1-hour price (12): 200001 * 12 + 100 * 22.5 = 2400012 + 2250 = 2402262
    assert worst_case_cost(sonnet, 200_001, 100) == Decimal("2.402262")
    # batch without batch prices: half of 6 and 15: 1000 * 3 + 100 * 7.5 = 3000 + 750 = 3750
    assert worst_case_cost(sonnet, 1000, 100, "batch") == Decimal("0.00375")
    # without a 1-hour price, the 5-minute write price (3.75): 1000 * 3.75 + 100 * 15 = 5250
    assert worst_case_cost(ModelCost.model_validate(ANTHROPIC_5M), 1000, 100) == Decimal("0.00525")
    # a tier that states only the 1-hour price (5) makes it the dearest above 64000: 64001 * 5 = 320005
    assert worst_case_cost(ModelCost.model_validate(TIER_1H), 64_001, 0) == Decimal("0.320005")
    # and below it the base write price (1.25): 64000 * 1.25 = 80000
    assert worst_case_cost(ModelCost.model_validate(TIER_1H), 64_000, 0) == Decimal("0.08")


def test_worst_case_cost_with_service_tiers_on_the_standard_ladder() -> None:
    service = ModelCost.model_validate(SERVICE)
    # priority above 100000: input-side dearest of 4 (standard), 1 (standard read), 2.5 (standard write carried
    # from the base) is 4; output 28: 150000 * 4 + 1000 * 28 = 600000 + 28000 = 628000
    assert worst_case_cost(service, 150_000, 1000, "priority") == Decimal("0.628")
    assert worst_case_cost(service, 150_000, 1000, "scale") == Decimal("0.628")
    # flex above 100000 is the standard long-context price: 150000 * 4 + 1000 * 16 = 616000
    assert worst_case_cost(service, 150_000, 1000, "flex") == Decimal("0.616")
    # no tier named: the dearest of standard (616000), flex (616000) and priority (628000)
    assert worst_case_cost(service, 150_000, 1000) == Decimal("0.628")
    # below the threshold: standard 10000 * 2.5 (its write price) + 1000 * 8 = 33000, flex 10000 * 2.5 (the standard
    # write price) + 1000 * 4 = 29000, priority 10000 * 3.5 (dearer than the standard 2.5) + 1000 * 14 = 49000
    assert worst_case_cost(service, 10_000, 1000) == Decimal("0.049")
    # standard named explicitly: 10000 * 2.5 (the write price is dearer than input 2) + 1000 * 8 = 33000
    assert worst_case_cost(service, 10_000, 1000, "default") == Decimal("0.033")


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        (
            {"inputTokens": 1, "outputTokens": 2, "tiers": [{"aboveInputTokens": 10}]},
            "cost.tiers: tier [0] (above 10) states no price",
        ),
        (
            # reported at its index as listed, before the tiers are sorted
            {
                "inputTokens": 1,
                "outputTokens": 2,
                "tiers": [{"aboveInputTokens": 20, "outputTokens": 3}, {"aboveInputTokens": 10}],
            },
            "cost.tiers: tier [1] (above 10) states no price",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"batch": {}}},
            "cost.serviceTiers: service tier 'batch' states no price",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"flex": {"tiers": []}}},
            "cost.serviceTiers: service tier 'flex' states no price",
        ),
        (
            {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"priority": {"tiers": [{"aboveInputTokens": 5}]}}},
            "cost.serviceTiers.priority.tiers: tier [0] (above 5) states no price",
        ),
    ],
)
def test_a_level_without_any_price_is_a_config_error_naming_the_path(
    registry: EnhancedModelRegistry, cost: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        registry.register_model(define("bad", cost))
    assert message in str(info.value)
    assert "model (id 'bad')" in str(info.value)
    with pytest.raises(ConfigError, match="states no price"):
        registry.register_models([define("bad", cost)])
    assert len(registry) == 0


@pytest.mark.parametrize(
    "cost",
    [
        {"inputTokens": 1, "outputTokens": 2, "tiers": [{"aboveInputTokens": 10, "outputTokens": 3}]},
        {"inputTokens": 1, "outputTokens": 2, "tiers": [{"aboveInputTokens": 10, "cachedInputTokens": 0}]},
        {"inputTokens": 1, "outputTokens": 2, "tiers": [{"aboveInputTokens": 10, W1H: 3}]},
        {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"priority": {"outputTokens": 3}}},
        {"inputTokens": 1, "outputTokens": 2, "serviceTiers": {"batch": {"cacheWriteTokens": 0}}},
        {
            "inputTokens": 1,
            "outputTokens": 2,
            "serviceTiers": {"flex": {"tiers": [{"aboveInputTokens": 5, "inputTokens": 1}]}},
        },
    ],
)
def test_a_level_stating_one_price_is_valid(registry: EnhancedModelRegistry, cost: dict[str, Any]) -> None:
    registry.register_model(define("partial", cost))
    assert len(registry) == 1


# ------------------------------------------------------------------ partial prices are kept as stated


def _costs_json(registry: EnhancedModelRegistry) -> dict[str, Any]:
    data = json.loads(registry.export_to_json())
    return {m["id"]: m["cost"] for m in data["models"]}


def test_partial_prices_survive_export_and_import(priced: EnhancedModelRegistry, clock: FakeClock) -> None:
    exported = _costs_json(priced)
    # what a level leaves out is left out (not written as null, 0 or a filled-in price)
    assert exported["output-only"]["tiers"] == [{"aboveInputTokens": 32000, "outputTokens": "18"}]
    assert exported["service"]["serviceTiers"]["flex"] == {"inputTokens": "1", "outputTokens": "4"}
    assert exported["service"]["serviceTiers"]["priority"]["tiers"][1] == {
        "aboveInputTokens": 100_000,
        "outputTokens": "28",
    }
    assert exported["batch-input-only"]["serviceTiers"] == {"batch": {"inputTokens": "1.5"}}
    with EnhancedModelRegistry(auto_save=False, clock=clock) as other:
        assert other.import_from_json(priced.export_to_json()) == len(COSTS)
        for name in COSTS:
            mine, theirs = priced.get_model(f"openai:{name}"), other.get_model(f"openai:{name}")
            assert mine is not None
            assert theirs is not None
            assert theirs.cost == mine.cost
        assert _costs_json(other) == exported
        for name, inp, out, kwargs, expected in RULES:
            assert other.estimate_cost(f"openai:{name}", inp, out, **kwargs) == Decimal(expected)


def test_partial_prices_survive_save_and_load(priced: EnhancedModelRegistry, clock: FakeClock) -> None:
    priced.save()
    saved = {m["id"]: m["cost"] for m in json.loads(priced.persistence_path.read_text())["models"]}
    assert saved["ladder"]["tiers"] == [
        {"aboveInputTokens": 10_000, "inputTokens": "2"},
        {"aboveInputTokens": 20_000, "outputTokens": "6", "cachedInputTokens": "0.2"},
        {"aboveInputTokens": 30_000, "cacheWriteTokens": "3"},
    ]
    with EnhancedModelRegistry(persistence_path=priced.persistence_path, auto_save=False, clock=clock) as other:
        assert other.load() == len(COSTS)
        loaded = other.get_model("openai:ladder")
        assert loaded is not None
        assert loaded.cost is not None
        assert loaded.cost.tiers is not None
        assert [t.cached_input_tokens for t in loaded.cost.tiers] == [None, Decimal("0.2"), None]
        for name, inp, out, kwargs, expected in RULES:
            assert other.estimate_cost(f"openai:{name}", inp, out, **kwargs) == Decimal(expected)
