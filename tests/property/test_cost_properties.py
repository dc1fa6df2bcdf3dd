"""Properties of cost tracking: money is an exact ``Decimal``, counters are exact, any split sums the same.

The reference is computed here, independently, as ``sum((i * input_price + o * output_price) / per)`` in a
60-digit decimal context. With ``per`` a power of ten every division is exact, so the registry must match with ``==``.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from noa_ai_provider import EnhancedModelRegistry

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

prices = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=Decimal("0.001"), places=8, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=100).map(Decimal),
)
pers = st.sampled_from([1, 1000, 1_000_000])
tokens = st.one_of(st.integers(min_value=0, max_value=5_000), st.integers(min_value=0, max_value=10**9))
records = st.lists(st.tuples(tokens, tokens, st.booleans()), min_size=0, max_size=40)


def reference_cost(i: int, o: int, pin: Decimal, pout: Decimal, per: int) -> Decimal:
    with decimal.localcontext(prec=60):
        return (i * pin + o * pout) / per


def reference_total(recs: list[tuple[int, int, bool]], pin: Decimal, pout: Decimal, per: int) -> Decimal:
    with decimal.localcontext(prec=60):
        total = Decimal(0)
        for i, o, _ in recs:
            total += (i * pin + o * pout) / per
        return total


def model(model_id: str, pin: Any, pout: Any, per: int, currency: str = "USD") -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id.upper(),
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": pin, "outputTokens": pout, "per": per, "currency": currency},
    }


def new_registry(tmp_path: Path) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", auto_save=False)


def _price_json(price: Decimal, as_string: bool) -> Any:
    # Prices may be given as decimal strings (exact) or, when they are integers, as JSON integers.
    if as_string or price != price.to_integral_value():
        return str(price)
    return int(price)


@SETTINGS
@given(pin=prices, pout=prices, per=pers, recs=records, as_string=st.booleans())
@example(pin=Decimal("0.01"), pout=Decimal("0.03"), per=1000, recs=[(2000, 1000, True)] * 3, as_string=True)
@example(pin=Decimal("0.00000001"), pout=Decimal("0.00000003"), per=1_000_000, recs=[(1, 1, False)] * 7, as_string=True)
def test_recorded_costs_are_exact(
    tmp_path: Path, pin: Decimal, pout: Decimal, per: int, recs: list[tuple[int, int, bool]], as_string: bool
) -> None:
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", _price_json(pin, as_string), _price_json(pout, as_string), per))
    returned = [registry.record_usage(key, i, o, success=ok) for i, o, ok in recs]

    for value, (i, o, _) in zip(returned, recs, strict=True):
        assert isinstance(value, Decimal)
        assert value == reference_cost(i, o, pin, pout, per)

    stats = registry.get_usage_stats(key)
    assert stats is not None
    expected_total = reference_total(recs, pin, pout, per)
    assert isinstance(stats.total_cost, Decimal)
    assert stats.total_cost == expected_total
    # The total equals the cost of the summed tokens (distributivity is exact here).
    sum_in, sum_out = sum(r[0] for r in recs), sum(r[1] for r in recs)
    assert stats.total_cost == reference_cost(sum_in, sum_out, pin, pout, per)
    assert stats.total_cost == registry.estimate_cost(key, sum_in, sum_out)
    # Counters.
    assert stats.total_input_tokens == sum_in
    assert stats.total_output_tokens == sum_out
    assert stats.request_count == len(recs)
    assert stats.successful_requests == sum(1 for r in recs if r[2])
    assert stats.failed_requests == sum(1 for r in recs if not r[2])
    assert stats.currency == "USD"
    # The entry reports the same, and statistics add it up.
    entry = registry.get_model(key)
    assert entry is not None
    assert entry.usage_stats.total_cost == expected_total
    statistics = registry.get_statistics()
    assert statistics.total_cost == expected_total
    assert statistics.total_input_tokens == sum_in
    assert statistics.total_output_tokens == sum_out


@SETTINGS
@given(pin=prices, pout=prices, per=pers, recs=records, data=st.data())
def test_any_split_of_the_records_gives_the_same_total(
    tmp_path: Path, pin: Decimal, pout: Decimal, per: int, recs: list[tuple[int, int, bool]], data: st.DataObject
) -> None:
    registry = new_registry(tmp_path)
    parts = 4
    keys = [registry.register_model(model(f"m{n}", str(pin), str(pout), per)) for n in range(parts)]
    assignment = data.draw(st.lists(st.integers(0, parts - 1), min_size=len(recs), max_size=len(recs)))
    expected_by_key = {key: Decimal(0) for key in keys}
    for (i, o, ok), n in zip(recs, assignment, strict=True):
        registry.record_usage(keys[n], i, o, success=ok)
        expected_by_key[keys[n]] = expected_by_key[keys[n]] + reference_cost(i, o, pin, pout, per)

    totals = {key: registry.get_usage_stats(key).total_cost for key in keys}  # type: ignore[union-attr]
    assert totals == expected_by_key
    whole = reference_total(recs, pin, pout, per)
    with decimal.localcontext(prec=60):
        assert sum(totals.values(), Decimal(0)) == whole
    assert registry.get_statistics().total_cost == whole
    assert registry.get_statistics().total_requests == len(recs)
    assert sum(registry.get_usage_stats(k).request_count for k in keys) == len(recs)  # type: ignore[union-attr]


@SETTINGS
@given(
    priced=st.lists(st.tuples(prices, prices, pers, records, st.sampled_from(["USD", "EUR"])), min_size=1, max_size=5)
)
def test_statistics_total_is_the_sum_over_models(
    tmp_path: Path, priced: list[tuple[Decimal, Decimal, int, list[tuple[int, int, bool]], str]]
) -> None:
    registry = new_registry(tmp_path)
    expected: dict[str, Decimal] = {}
    by_currency: dict[str, Decimal] = {}
    for n, (pin, pout, per, recs, currency) in enumerate(priced):
        key = registry.register_model(model(f"m{n}", str(pin), str(pout), per, currency))
        for i, o, ok in recs:
            registry.record_usage(key, i, o, success=ok)
        expected[key] = reference_total(recs, pin, pout, per)
        by_currency[currency] = by_currency.get(currency, Decimal(0)) + expected[key]

    per_model = {e.key: e.usage_stats.total_cost for e in registry.list_models()}
    assert per_model == expected
    statistics = registry.get_statistics()
    with decimal.localcontext(prec=60):
        assert statistics.total_cost == sum(expected.values(), Decimal(0))
        assert statistics.total_cost == sum(per_model.values(), Decimal(0))
    assert statistics.cost_by_currency == by_currency
    assert statistics.total_input_tokens == sum(r[0] for p in priced for r in p[3])
    assert statistics.total_output_tokens == sum(r[1] for p in priced for r in p[3])


@SETTINGS
@given(pin=prices, pout=prices, per=pers, i=tokens, o=tokens)
@example(pin=Decimal("0.01"), pout=Decimal("0.03"), per=1000, i=2000, o=1000)
def test_estimate_cost_equals_reference_and_records_nothing(
    tmp_path: Path, pin: Decimal, pout: Decimal, per: int, i: int, o: int
) -> None:
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", str(pin), str(pout), per))
    estimate = registry.estimate_cost(key, i, o)
    assert isinstance(estimate, Decimal)
    assert estimate == reference_cost(i, o, pin, pout, per)
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0
    assert stats.total_cost == 0
    # The estimate is exactly what recording the same request then charges.
    assert registry.record_usage(key, i, o) == estimate


@SETTINGS
@given(
    pin=st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False, allow_infinity=False),
    pout=st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False, allow_infinity=False),
    per=pers,
    recs=records,
)
@example(pin=Decimal("0.01"), pout=Decimal("0.03"), per=1000, recs=[(1000, 1000, True)])
@example(pin=Decimal("0.1"), pout=Decimal("0.2"), per=1, recs=[(1, 1, True)])
def test_float_prices_become_their_exact_decimal(
    tmp_path: Path, pin: Decimal, pout: Decimal, per: int, recs: list[tuple[int, int, bool]]
) -> None:
    """A float price is the decimal it was written as (0.01 -> Decimal('0.01')), not its binary expansion."""
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", float(pin), float(pout), per))
    entry = registry.get_model(key)
    assert entry is not None
    assert isinstance(entry.cost.input_tokens, Decimal)
    assert entry.cost.input_tokens == pin
    assert entry.cost.output_tokens == pout
    for i, o, ok in recs:
        registry.record_usage(key, i, o, success=ok)
    assert registry.get_usage_stats(key).total_cost == reference_total(recs, pin, pout, per)  # type: ignore[union-attr]


def test_float_price_examples(tmp_path: Path) -> None:
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", 0.01, 0.03, 1000))
    entry = registry.get_model(key)
    assert entry is not None
    assert entry.cost.input_tokens == Decimal("0.01")
    assert entry.cost.output_tokens == Decimal("0.03")
    assert registry.record_usage(key, 2000, 1000) == Decimal("0.05")
    for _ in range(9):
        registry.record_usage(key, 2000, 1000)
    # Ten requests at 0.05 are exactly 0.5: no binary-float drift.
    assert registry.get_usage_stats(key).total_cost == Decimal("0.5")  # type: ignore[union-attr]
    assert registry.estimate_cost(key, 1, 0) == Decimal("0.00001")
    key3 = registry.register_model(model("m3", 0.1, 0.2, 1))
    assert registry.estimate_cost(key3, 1, 1) == Decimal("0.3")


@SETTINGS
@given(pin=prices, pout=prices, per=pers, before=records, after=records)
def test_reset_then_record_counts_only_the_new_records(
    tmp_path: Path,
    pin: Decimal,
    pout: Decimal,
    per: int,
    before: list[tuple[int, int, bool]],
    after: list[tuple[int, int, bool]],
) -> None:
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", str(pin), str(pout), per))
    for i, o, ok in before:
        registry.record_usage(key, i, o, success=ok)
    registry.reset_usage_stats(key)
    for i, o, ok in after:
        registry.record_usage(key, i, o, success=ok)
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.total_cost == reference_total(after, pin, pout, per)
    assert stats.request_count == len(after)
    assert stats.total_input_tokens == sum(r[0] for r in after)
    assert stats.total_output_tokens == sum(r[1] for r in after)


@SETTINGS
@given(pin=prices, pout=prices, per=pers, recs=records)
def test_usage_recorded_events_carry_exact_costs(
    tmp_path: Path, pin: Decimal, pout: Decimal, per: int, recs: list[tuple[int, int, bool]]
) -> None:
    registry = new_registry(tmp_path)
    key = registry.register_model(model("m", str(pin), str(pout), per))
    seen: list[dict[str, Any]] = []
    registry.on("usage-recorded", lambda sender, **payload: seen.append(payload))
    for i, o, ok in recs:
        registry.record_usage(key, i, o, success=ok)
    assert len(seen) == len(recs)
    running = Decimal(0)
    for payload, (i, o, _) in zip(seen, recs, strict=True):
        assert payload["key"] == key
        assert payload["input_tokens"] == i
        assert payload["output_tokens"] == o
        assert payload["cost"] == reference_cost(i, o, pin, pout, per)
        with decimal.localcontext(prec=60):
            running += payload["cost"]
        assert payload["total_cost"] == running
