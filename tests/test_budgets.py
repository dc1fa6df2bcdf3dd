"""Budgets (periods, events, worst-case reservation in ``acquire``) and the daily usage history.

Time comes from a FakeClock set to UTC calendar instants; costs are exact ``Decimal`` values computed by hand in
the comments. The ``alpha`` and ``beta`` models bill ``(input * 1 + output * 2) / 1000`` (alpha also has a cache
price and a long-context tier above 1000 input tokens).
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import (
    BudgetExceededError,
    BudgetStatus,
    ConfigError,
    EnhancedModelRegistry,
    ModelNotFoundError,
    RateLimitExceeded,
    RegistryError,
    UnpricedModelError,
)
from noa_ai_provider import cost as cost_module
from noa_ai_provider.budget import period_bounds
from noa_ai_provider.testing import EventRecorder, FakeClock

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

ALPHA, BETA = "openai:alpha", "openai:beta"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


WEDNESDAY = at(2024, 3, 13, 15, 30)  # 2024-03-11 is a Monday


def define(model_id: str, price: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": model_id, "name": model_id.title(), "provider": "openai", "version": "1.0.0"}
    out["cost"] = price
    out.update(extra)
    return out


ALPHA_COST = {
    "inputTokens": 1,
    "outputTokens": 2,
    "cachedInputTokens": "0.1",
    "per": 1000,
    "tiers": [{"aboveInputTokens": 1000, "inputTokens": 2, "outputTokens": 4}],
}
BETA_COST = {"inputTokens": 1, "outputTokens": 2, "per": 1000}


@pytest.fixture
def reg(registry: EnhancedModelRegistry, clock: FakeClock) -> EnhancedModelRegistry:
    """The registry on Wednesday 2024-03-13 15:30 UTC with ``alpha`` and ``beta``."""
    clock.set(WEDNESDAY)
    registry.register_models([define("alpha", ALPHA_COST), define("beta", BETA_COST)])
    return registry


@pytest.fixture
def events(reg: EnhancedModelRegistry) -> EventRecorder:
    """Overrides conftest's ``events``: attached once ``reg`` registered its models."""
    return EventRecorder().attach(reg)


def status(registry: EnhancedModelRegistry, key: str | None = None, period: str = "month") -> BudgetStatus:
    found = [s for s in registry.get_budget_status() if s.key == key and s.period == period]
    assert len(found) == 1, registry.get_budget_status()
    return found[0]


def budget_events(recorder: EventRecorder) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, e.payload) for e in recorder.events if e.name.startswith("budget-")]


def finishes(func: Callable[[], object], seconds: float = 5.0) -> BaseException | None:
    """Run ``func`` in a thread; fail unless it returns or raises within ``seconds``. Returns what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked instead of raising at once"
    return raised[0] if raised else None


# ------------------------------------------------------------------ set_budget


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": float("nan")}, "amount"),
        ({"amount": "Infinity"}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"amount": 1, "warn_at": "1.5"}, "warn_at"),
        ({"amount": 1, "warn_at": -0.1}, "warn_at"),
        ({"amount": 1, "warn_at": "x"}, "warn_at"),
        ({"amount": 1, "period": "year"}, "period"),
        ({"amount": 1, "period": "Month"}, "period"),
    ],
)
def test_set_budget_validation(reg: EnhancedModelRegistry, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        reg.set_budget(**kwargs)
    assert reg.get_budget_status() == []


def test_set_budget_unknown_key_and_keyword_only(reg: EnhancedModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        reg.set_budget(10, key="openai:nope")
    with pytest.raises(TypeError):
        reg.set_budget(10, "day")  # type: ignore[misc]
    assert reg.get_budget_status() == []


def test_set_budget_amounts_are_exact_decimals(reg: EnhancedModelRegistry) -> None:
    reg.set_budget("10.50", period="day")
    reg.set_budget(0.1, period="week")
    reg.set_budget(3, period="month", key=ALPHA, warn_at="0.5")
    reg.set_budget(Decimal("0"), period="total")
    assert status(reg, period="day").limit == Decimal("10.50")
    assert status(reg, period="week").limit == Decimal("0.1")  # not 0.1000000000000000055...
    alpha = status(reg, ALPHA, "month")
    assert (alpha.limit, alpha.warn_at) == (Decimal(3), Decimal("0.5"))
    assert status(reg, period="day").warn_at == Decimal("0.8")
    assert status(reg, period="total").limit == Decimal(0)


def test_get_budget_status_fields_and_remove(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(10)
    reg.set_budget(2, key=ALPHA, period="day")
    reg.record_usage(ALPHA, 500, 100)  # 500 * 1 + 100 * 2 = 700 -> 0.7
    reservation = reg.acquire(BETA, 1000, 500)  # worst case 1000 + 1000 = 2000 -> 2
    glob = status(reg)
    assert (glob.spent, glob.reserved, glob.remaining) == (Decimal("0.7"), Decimal(2), Decimal("7.3"))
    assert (glob.period_start, glob.period_end) == (utc(2024, 3, 1), utc(2024, 4, 1))
    alpha = status(reg, ALPHA, "day")
    assert (alpha.spent, alpha.reserved, alpha.remaining) == (Decimal("0.7"), Decimal(0), Decimal("1.3"))
    assert reg.remove_budget(key=ALPHA, period="day") is True
    assert reg.remove_budget(key=ALPHA, period="day") is False
    assert reg.remove_budget(period="week") is False
    assert [(s.key, s.period) for s in reg.get_budget_status()] == [(None, "month")]
    reservation.cancel()
    assert status(reg).reserved == Decimal(0)


def test_remove_budget_resolves_the_key_as_set_budget_does(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(2, key="alpha", period="day")  # a bare id resolves to openai:alpha
    assert [(s.key, s.period) for s in reg.get_budget_status()] == [(ALPHA, "day")]
    assert reg.remove_budget(key="alpha", period="day") is True  # was False: the name was not resolved
    assert reg.get_budget_status() == []
    reg.set_budget(3, key=BETA)
    reg.unregister_model(BETA)
    assert reg.remove_budget(key=BETA) is True  # a model gone: its budget is still found under its key


def test_global_and_per_key_budgets_count_what_applies(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(100)
    reg.set_budget(100, key=ALPHA)
    reg.set_budget(100, key=BETA, period="day")
    reg.record_usage(ALPHA, 1000, 0)  # 1
    reg.record_usage(BETA, 0, 1000)  # 2
    reg.record_usage(ALPHA, 0, 500, False)  # 1, a failed request is charged too
    assert status(reg).spent == Decimal(4)
    assert status(reg, ALPHA).spent == Decimal(2)
    assert status(reg, BETA, "day").spent == Decimal(2)


# ------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("now", "period", "start", "end"),
    [
        (at(2024, 3, 13, 15, 30), "day", utc(2024, 3, 13), utc(2024, 3, 14)),
        (at(2024, 3, 13), "day", utc(2024, 3, 13), utc(2024, 3, 14)),
        (at(2024, 3, 13, 23, 59, 59), "day", utc(2024, 3, 13), utc(2024, 3, 14)),
        (at(2024, 3, 13, 15, 30), "week", utc(2024, 3, 11), utc(2024, 3, 18)),  # Wednesday
        (at(2024, 3, 11), "week", utc(2024, 3, 11), utc(2024, 3, 18)),  # Monday 00:00
        (at(2024, 3, 17, 23, 59, 59), "week", utc(2024, 3, 11), utc(2024, 3, 18)),  # Sunday night
        (at(2024, 12, 31, 12), "week", utc(2024, 12, 30), utc(2025, 1, 6)),  # across the new year
        (at(2024, 2, 29, 12), "month", utc(2024, 2, 1), utc(2024, 3, 1)),  # leap day
        (at(2024, 12, 31, 23, 59, 59), "month", utc(2024, 12, 1), utc(2025, 1, 1)),  # December -> January
        (at(2025, 1, 1), "month", utc(2025, 1, 1), utc(2025, 2, 1)),
    ],
)
def test_period_bounds_in_utc(
    registry: EnhancedModelRegistry, clock: FakeClock, now: float, period: str, start: datetime, end: datetime
) -> None:
    clock.set(now)
    registry.set_budget(1, period=period)
    got = registry.get_budget_status()[0]
    assert (got.period_start, got.period_end) == (start, end)
    assert got.period_start is not None
    assert got.period_start.utcoffset() == timedelta(0)
    assert period_bounds(period, datetime.fromtimestamp(now, UTC)) == (start, end)


def test_total_budget_has_no_period_bounds(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    reg.set_budget(5, period="total")
    reg.record_usage(ALPHA, 1000, 0)  # 1
    clock.set(at(2030, 1, 1))
    reg.record_usage(ALPHA, 1000, 0)  # 1
    got = status(reg, period="total")
    assert (got.period_start, got.period_end, got.spent) == (None, None, Decimal(2))


def test_day_rollover_starts_at_zero_and_warns_again(
    reg: EnhancedModelRegistry, clock: FakeClock, events: EventRecorder
) -> None:
    reg.set_budget("1.00", period="day")
    reg.record_usage(ALPHA, 900, 0)  # 0.9: warning
    clock.set(at(2024, 3, 13, 23, 59, 59))
    assert status(reg, period="day").spent == Decimal("0.9")
    clock.set(at(2024, 3, 14))  # midnight: a new day
    fresh = status(reg, period="day")
    assert (fresh.spent, fresh.period_start, fresh.period_end) == (Decimal(0), utc(2024, 3, 14), utc(2024, 3, 15))
    reg.record_usage(ALPHA, 850, 0)  # 0.85: warning again, in the new period
    assert [(n, p["spent"]) for n, p in budget_events(events)] == [
        ("budget-warning", Decimal("0.9")),
        ("budget-warning", Decimal("0.85")),
    ]


def test_month_rollover_december_to_january(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    clock.set(at(2024, 12, 31, 23, 59, 59))
    key = registry.register_model(define("beta", BETA_COST))
    registry.set_budget(10)
    registry.record_usage(key, 3000, 0)  # 3
    assert status(registry).spent == Decimal(3)
    clock.set(at(2025, 1, 1))
    january = status(registry)
    assert (january.spent, january.period_start, january.period_end) == (Decimal(0), utc(2025, 1, 1), utc(2025, 2, 1))
    registry.record_usage(key, 1000, 0)
    assert status(registry).spent == Decimal(1)


def test_week_rollover_on_monday(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    reg.set_budget(10, period="week")
    reg.record_usage(BETA, 2000, 0)  # 2 on Wednesday
    clock.set(at(2024, 3, 17, 23, 59, 59))  # Sunday: same week
    reg.record_usage(BETA, 1000, 0)
    assert status(reg, period="week").spent == Decimal(3)
    clock.set(at(2024, 3, 18))  # Monday: a new week
    assert status(reg, period="week").spent == Decimal(0)


# ------------------------------------------------------------------ events


def test_warning_and_exceeded_fire_once_per_period_with_payload(
    reg: EnhancedModelRegistry, events: EventRecorder
) -> None:
    reg.set_budget("1.00", period="day")
    reg.record_usage(ALPHA, 500, 0)  # 0.5
    assert budget_events(events) == []
    reg.record_usage(ALPHA, 300, 0)  # 0.8: reaches warn_at * limit exactly -> warning
    reg.record_usage(ALPHA, 100, 0)  # 0.9
    reg.record_usage(ALPHA, 100, 0)  # 1.0: at the limit is not past it
    assert budget_events(events) == [
        ("budget-warning", {"key": None, "period": "day", "limit": Decimal("1.00"), "spent": Decimal("0.8")})
    ]
    reg.record_usage(ALPHA, 100, 0)  # 1.1: past the limit
    reg.record_usage(ALPHA, 100, 0)  # 1.2: nothing more this period
    assert budget_events(events)[1:] == [
        ("budget-exceeded", {"key": None, "period": "day", "limit": Decimal("1.00"), "spent": Decimal("1.1")})
    ]
    assert len(budget_events(events)) == 2
    # emitted after the usage they follow
    names = [n for n in events.names() if n in {"usage-recorded", "budget-warning", "budget-exceeded"}]
    assert names[:3] == ["usage-recorded", "usage-recorded", "budget-warning"]


def test_one_request_can_warn_and_exceed_and_per_key_payload(reg: EnhancedModelRegistry, events: EventRecorder) -> None:
    reg.set_budget(1, key=BETA, period="week", warn_at="0.5")
    reg.record_usage(ALPHA, 5000, 0)  # another model: does not count
    reg.record_usage(BETA, 400, 0)  # 0.4
    assert budget_events(events) == []
    reg.record_usage(BETA, 700, 0)  # 1.1: warning and exceeded at once, warning first
    payload = {"key": BETA, "period": "week", "limit": Decimal(1), "spent": Decimal("1.1")}
    assert budget_events(events) == [("budget-warning", payload), ("budget-exceeded", payload)]


def test_events_from_commit(reg: EnhancedModelRegistry, events: EventRecorder) -> None:
    reg.set_budget(1)
    reservation = reg.acquire(BETA, 100, 400)  # worst case 100 + 800 = 900 -> 0.9
    assert budget_events(events) == []  # reserving is not spending
    reservation.commit(400)  # 0.9 spent: warning
    assert budget_events(events) == [
        ("budget-warning", {"key": None, "period": "month", "limit": Decimal(1), "spent": Decimal("0.9")})
    ]


# ------------------------------------------------------------------ set_budget counts the history


def test_set_budget_counts_what_the_period_already_holds(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    clock.set(at(2024, 2, 28, 12))
    reg.record_usage(ALPHA, 1000, 0)  # 1 last month
    clock.set(at(2024, 3, 4, 12))
    reg.record_usage(ALPHA, 500, 0)  # 0.5 this month, last week
    clock.set(at(2024, 3, 11, 0, 0, 1))
    reg.record_usage(BETA, 200, 0)  # 0.2 this week (Monday)
    clock.set(WEDNESDAY)
    reg.record_usage(ALPHA, 100, 0)  # 0.1 today
    reg.record_usage(BETA, 10, 0)  # 0.01 today
    reg.reset_usage_stats(ALPHA)  # the counters, not the history
    reg.set_budget(100, period="total")
    reg.set_budget(100, period="month")
    reg.set_budget(100, period="week")
    reg.set_budget(100, period="day")
    reg.set_budget(100, period="month", key=ALPHA)
    reg.set_budget(100, period="day", key=BETA)
    assert status(reg, period="total").spent == Decimal("1.81")  # 1 + 0.5 + 0.2 + 0.1 + 0.01
    assert status(reg, period="month").spent == Decimal("0.81")  # 0.5 + 0.2 + 0.1 + 0.01
    assert status(reg, period="week").spent == Decimal("0.31")  # 0.2 + 0.1 + 0.01
    assert status(reg, period="day").spent == Decimal("0.11")  # 0.1 + 0.01
    assert status(reg, ALPHA, "month").spent == Decimal("0.6")  # 0.5 + 0.1
    assert status(reg, BETA, "day").spent == Decimal("0.01")


def test_set_budget_ignores_days_outside_the_period(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    clock.set(at(2024, 4, 1, 12))  # a day after the current month (a clock that was ahead, a loaded snapshot)
    reg.record_usage(BETA, 1000, 0)  # 1
    clock.set(at(2024, 3, 18))  # the next Monday
    reg.record_usage(BETA, 200, 0)  # 0.2
    clock.set(at(2024, 3, 14))  # the next day
    reg.record_usage(BETA, 30, 0)  # 0.03
    clock.set(WEDNESDAY)
    for period in ("day", "week", "month", "total"):
        reg.set_budget(100, period=period)
    assert status(reg, period="day").spent == Decimal(0)
    assert status(reg, period="week").spent == Decimal("0.03")
    assert status(reg, period="month").spent == Decimal("0.23")
    assert status(reg, period="total").spent == Decimal("1.23")


def test_set_budget_over_existing_spend_warns_no_more_this_period(
    reg: EnhancedModelRegistry, events: EventRecorder
) -> None:
    reg.record_usage(ALPHA, 900, 0)  # 0.9 before any budget
    reg.set_budget(1)
    assert status(reg).spent == Decimal("0.9")
    reg.record_usage(ALPHA, 50, 0)  # 0.95: the warning level was already passed when the budget was set
    assert budget_events(events) == []
    reg.record_usage(ALPHA, 100, 0)  # 1.05: exceeded
    assert [n for n, _ in budget_events(events)] == ["budget-exceeded"]


def test_replacing_a_budget_keeps_open_reservations(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(1)
    reservation = reg.acquire(BETA, 500, 0)  # 0.5 reserved
    reg.set_budget(2)
    assert (status(reg).limit, status(reg).reserved) == (Decimal(2), Decimal("0.5"))
    reservation.commit(0, input_tokens=200)  # 0.2
    assert (status(reg).spent, status(reg).reserved) == (Decimal("0.2"), Decimal(0))


# ------------------------------------------------------------------ acquire reserves the worst case


def test_acquire_reserves_the_worst_case_and_commit_corrects_it(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(10)
    reservation = reg.acquire(ALPHA, 500, 100)
    # input at full price even if it will hit the cache: 500 * 1 + 100 * 2 = 700
    assert (status(reg).reserved, status(reg).spent) == (Decimal("0.7"), Decimal(0))
    # actual: 100 * 1 + 400 * 0.1 + 50 * 2 = 100 + 40 + 100 = 240
    assert reservation.commit(50, cached_input_tokens=400) == Decimal("0.24")
    assert (status(reg).reserved, status(reg).spent) == (Decimal(0), Decimal("0.24"))
    # the tier for that input size: at the threshold 1000 * 1 + 100 * 2 = 1200
    r1 = reg.acquire(ALPHA, 1000, 100)
    assert status(reg).reserved == Decimal("1.2")
    # one token over: 1001 * 2 + 100 * 4 = 2002 + 400 = 2402
    r2 = reg.acquire(ALPHA, 1001, 100)
    assert status(reg).reserved == Decimal("3.602")  # 1.2 + 2.402
    r1.cancel()
    r2.cancel()
    assert (status(reg).reserved, status(reg).spent) == (Decimal(0), Decimal("0.24"))
    # max_output_tokens defaults to 0: input only
    r3 = reg.acquire(BETA, 300)
    assert status(reg).reserved == Decimal("0.3")
    r3.cancel()


def test_budget_exceeded_error(reg: EnhancedModelRegistry, events: EventRecorder) -> None:
    reg.set_budget(1)
    reg.record_usage(ALPHA, 240, 0)  # 0.24 spent
    held = reg.acquire(BETA, 300, 0)  # 0.3 reserved
    with pytest.raises(BudgetExceededError) as info:
        reg.acquire(ALPHA, 1001, 100)  # 2.402 needed
    err = info.value
    assert isinstance(err, RegistryError)
    assert not isinstance(err, RateLimitExceeded)
    assert (err.key, err.budget_key, err.period) == (ALPHA, None, "month")
    assert (err.limit, err.spent, err.reserved, err.needed) == (
        Decimal(1),
        Decimal("0.24"),
        Decimal("0.3"),
        Decimal("2.402"),
    )
    assert "month budget (global)" in str(err)
    assert status(reg).reserved == Decimal("0.3")  # the refusal held nothing
    assert events.of("rate-limited") == []
    # exactly at the limit fits: 0.24 + 0.3 + 0.46 = 1
    fits = reg.acquire(BETA, 460)
    assert status(reg).remaining == Decimal(0)
    with pytest.raises(BudgetExceededError) as again:
        reg.acquire(BETA, 1)  # 0.001 more does not
    assert again.value.needed == Decimal("0.001")
    fits.cancel()
    held.cancel()


def test_the_binding_budget_is_named(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(100)
    reg.set_budget("0.5", key=ALPHA, period="day")
    reg.acquire(BETA, 600).cancel()  # the alpha budget does not apply to beta
    with pytest.raises(BudgetExceededError) as info:
        reg.acquire(ALPHA, 600)
    assert (info.value.budget_key, info.value.period, info.value.needed) == (ALPHA, "day", Decimal("0.6"))
    assert f"day budget ({ALPHA})" in str(info.value)
    assert status(reg).reserved == Decimal(0)  # all or nothing: the global budget held nothing either


def test_budget_refusal_is_immediate_even_when_waiting(reg: EnhancedModelRegistry) -> None:
    reg.set_budget("0.1")
    raised = finishes(lambda: reg.acquire(BETA, 200, wait=True))
    assert isinstance(raised, BudgetExceededError)
    raised = finishes(lambda: reg.acquire(BETA, 200, wait=True, timeout=30))
    assert isinstance(raised, BudgetExceededError)


def test_cancel_and_context_manager_release_the_hold(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(1)
    reservation = reg.acquire(BETA, 500, 100)  # 0.7
    reservation.cancel()
    reservation.cancel()
    assert (status(reg).reserved, status(reg).spent) == (Decimal(0), Decimal(0))
    with reg.acquire(BETA, 500, 100):
        assert status(reg).reserved == Decimal("0.7")
    assert (status(reg).reserved, status(reg).spent) == (Decimal(0), Decimal(0))  # left without a decision
    with pytest.raises(ZeroDivisionError), reg.acquire(BETA, 500, 100):
        raise ZeroDivisionError
    # an exception: released, and a failed request counted at $0 (the caller commits what it knows was billed)
    assert (status(reg).reserved, status(reg).spent) == (Decimal(0), Decimal(0))
    stats = reg.get_usage_stats(BETA)
    assert stats is not None
    assert (stats.request_count, stats.failed_requests, stats.total_cost) == (1, 1, Decimal(0))


def test_commit_is_idempotent_and_releases_once(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(1)
    a = reg.acquire(BETA, 300, 0)
    b = reg.acquire(BETA, 300, 0)
    assert a.commit(0, input_tokens=100) == Decimal("0.1")
    assert a.commit(0, input_tokens=100) == Decimal("0.1")
    a.cancel()
    assert (status(reg).reserved, status(reg).spent) == (Decimal("0.3"), Decimal("0.1"))
    b.cancel()
    assert status(reg).reserved == Decimal(0)


def test_commit_of_more_than_reserved_is_recorded_as_it_happened(
    reg: EnhancedModelRegistry, events: EventRecorder
) -> None:
    reg.set_budget(1)
    reservation = reg.acquire(BETA, 500, 0)  # 0.5
    reservation.commit(300, input_tokens=500)  # 500 + 600 = 1.1: more than reserved
    assert (status(reg).spent, status(reg).reserved, status(reg).remaining) == (
        Decimal("1.1"),
        Decimal(0),
        Decimal("-0.1"),
    )
    assert [n for n, _ in budget_events(events)] == ["budget-warning", "budget-exceeded"]
    with pytest.raises(BudgetExceededError):
        reg.acquire(BETA, 0)  # even a free request: the budget is past its limit


def test_reservation_across_a_period_boundary(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    reg.set_budget(1, period="day")
    clock.set(at(2024, 3, 13, 23, 55))
    reservation = reg.acquire(BETA, 600, 0)  # 0.6 reserved on the 13th
    clock.set(at(2024, 3, 14, 0, 5))  # 10 minutes later: open (reservations expire after 15)
    day = status(reg, period="day")
    assert (day.spent, day.reserved, day.period_start) == (Decimal(0), Decimal("0.6"), utc(2024, 3, 14))
    with pytest.raises(BudgetExceededError):
        reg.acquire(BETA, 500)  # the open reservation still counts in the new period
    reservation.commit(0)  # 0.6, spent on the 14th
    assert (status(reg, period="day").spent, status(reg, period="day").reserved) == (Decimal("0.6"), Decimal(0))
    assert [(e.date, e.cost) for e in reg.get_usage_history(BETA)] == [(date(2024, 3, 14), Decimal("0.6"))]


def test_reservation_made_before_the_budget_is_charged_on_commit(reg: EnhancedModelRegistry) -> None:
    reservation = reg.acquire(BETA, 500, 0)
    reg.set_budget(1)
    assert status(reg).reserved == Decimal(0)
    reservation.commit(0)
    assert (status(reg).spent, status(reg).reserved) == (Decimal("0.5"), Decimal(0))


def test_removing_a_budget_with_open_reservations(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(1)
    reservation = reg.acquire(BETA, 500, 0)
    assert reg.remove_budget()
    reservation.commit(0)
    reg.set_budget(1)
    assert (status(reg).spent, status(reg).reserved) == (Decimal("0.5"), Decimal(0))


def test_a_budget_removed_and_set_again_is_not_released_by_older_reservations(reg: EnhancedModelRegistry) -> None:
    reg.set_budget(1)
    old = reg.acquire(BETA, 500)  # 0.5, held by the first budget
    reg.remove_budget()
    reg.set_budget(1)  # a new budget: holds nothing of `old`
    new = reg.acquire(BETA, 500)  # 0.5, held by the new budget
    old.cancel()  # must not touch the new budget
    assert status(reg).reserved == Decimal("0.5")
    with pytest.raises(BudgetExceededError):
        reg.acquire(BETA, 1000)  # 0.5 + 1 > 1
    new.commit(0)
    assert status(reg).spent <= Decimal(1)


def test_unpriced_model_acquire_only_fails_when_a_budget_applies(reg: EnhancedModelRegistry) -> None:
    mystery = reg.register_model(define("mystery", None))
    reg.set_budget(1, key=BETA)
    reg.acquire(mystery, 100, 100).cancel()  # the beta budget does not apply
    reg.set_budget(1)
    with pytest.raises(UnpricedModelError):
        reg.acquire(mystery, 100, 100)
    assert status(reg).reserved == Decimal(0)


# ------------------------------------------------------------------ all or nothing with the rate limits


def test_rate_limit_refusal_holds_no_budget(reg: EnhancedModelRegistry) -> None:
    key = reg.register_model(define("limited", BETA_COST, rateLimit={"requestsPerMinute": 1}))
    reg.set_budget(1)
    first = reg.acquire(key, 100, 0)  # 0.1
    with pytest.raises(RateLimitExceeded):
        reg.acquire(key, 100, 0)
    assert status(reg).reserved == Decimal("0.1")
    first.cancel()
    assert status(reg).reserved == Decimal(0)


def test_budget_refusal_takes_no_rate_limit_capacity(reg: EnhancedModelRegistry) -> None:
    key = reg.register_model(define("limited", BETA_COST, rateLimit={"requestsPerMinute": 1, "tokensPerMinute": 700}))
    reg.set_budget("0.5")
    with pytest.raises(BudgetExceededError):
        reg.acquire(key, 600, 0)  # 0.6 > 0.5
    check = reg.check_rate_limit(key, 700)
    assert check.allowed, check
    # the one request of the minute and 250 of the 700 tokens: had the refusal taken its 600, this would not fit
    admitted = reg.acquire(key, 100, 150)
    assert status(reg).reserved == Decimal("0.4")  # 100 * 1 + 150 * 2 = 400
    admitted.cancel()


# ------------------------------------------------------------------ worst case vs. prices above the input price


def test_cache_writes_priced_above_input_are_reserved_at_the_write_price(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(
        define("writer", {"inputTokens": 1, "outputTokens": 2, "cacheWriteTokens": "1.25", "per": 1000})
    )
    registry.set_budget(1)
    first = registry.acquire(key, 500, 0)  # every input token may be a cache write: 500 * 1.25 = 625
    assert status(registry).reserved == Decimal("0.625")
    with pytest.raises(BudgetExceededError) as info:
        registry.acquire(key, 500, 0)  # 0.625 + 0.625 > 1
    assert info.value.needed == Decimal("0.625")
    # the same 500 input tokens, all written to the cache: exactly what was reserved
    assert first.commit(0, cache_write_tokens=500) == Decimal("0.625")
    assert (status(registry).spent, status(registry).reserved) == (Decimal("0.625"), Decimal(0))


def test_service_tiers_priced_above_base_are_reserved_at_the_dearest(registry: EnhancedModelRegistry) -> None:
    price = dict(
        BETA_COST,
        serviceTiers={
            "priority": {"inputTokens": 2, "outputTokens": 4},
            "batch": {"inputTokens": "0.5", "outputTokens": 1},
        },
    )
    key = registry.register_model(define("prio", price))
    registry.set_budget(2)
    # acquire does not know the tier the call will use: the dearest, priority: 1000 * 2 = 2 (base would be 1)
    reservation = registry.acquire(key, 1000, 0)
    assert status(registry).reserved == Decimal(2)
    assert reservation.commit(0, service_tier="priority") == Decimal(2)
    assert (status(registry).spent, status(registry).reserved) == (Decimal(2), Decimal(0))
    with pytest.raises(BudgetExceededError):
        registry.acquire(key, 1)  # 0.002 at priority: the budget is full


def test_budget_arithmetic_is_as_exact_as_costs(registry: EnhancedModelRegistry) -> None:
    # per=3 makes every cost a repeating decimal: the budget must add them in the costs' 60 digits, so a released
    # reservation leaves exactly 0 and spent equals the recorded total.
    key = registry.register_model(define("thirds", {"inputTokens": 1, "outputTokens": 1, "per": 3}))
    registry.set_budget(100, period="total")
    reservation = registry.acquire(key, 2, 0)  # 2/3
    cost_ = reservation.commit(0)
    registry.record_usage(key, 1, 0)  # 1/3
    stats = registry.get_usage_stats(key)
    assert stats is not None
    got = status(registry, period="total")
    assert got.reserved == Decimal(0)
    assert got.spent == stats.total_cost == cost_ + registry.estimate_cost(key, 1, 0)
    assert got.remaining == Decimal(100) - stats.total_cost


# ------------------------------------------------------------------ threads


def test_budgets_never_overspend_under_eight_threads(reg: EnhancedModelRegistry) -> None:
    """8 threads reserve, commit (never more than reserved) or cancel at once against a global and a per-key
    budget with room for only a few open requests; workers and a monitor read the status meanwhile. Nothing may
    ever be spent or promised past a limit."""
    reg.set_budget(1)
    reg.set_budget("0.6", key=ALPHA, period="day")
    recorder = EventRecorder().attach(reg)
    limits = {(None, "month"): Decimal(1), (ALPHA, "day"): Decimal("0.6")}
    threads_n, attempts = 8, 1000
    barrier = threading.Barrier(threads_n + 1)
    stop = threading.Event()
    logs: list[list[tuple[str, Decimal, Decimal | None]]] = [[] for _ in range(threads_n)]
    refused = [0] * threads_n
    errors: list[BaseException] = []
    seen: list[tuple[tuple[str | None, str], Decimal, Decimal]] = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            barrier.wait()
            for _ in range(attempts):
                key = rng.choice((ALPHA, BETA))
                inp, out = rng.randint(50, 200), rng.randint(0, 100)
                worst = Decimal(inp + 2 * out) / 1000  # both models below alpha's tier
                try:
                    reservation = reg.acquire(key, inp, out)
                except BudgetExceededError:
                    refused[index] += 1
                    continue
                for s in reg.get_budget_status():  # read while holding: others hold theirs too
                    seen.append(((s.key, s.period), s.spent, s.reserved))
                choice = rng.random()
                if choice < 0.5:
                    reservation.cancel()
                    logs[index].append((key, worst, None))
                    continue
                if choice < 0.9:  # the call failed before the provider saw it: nothing used, nothing billed
                    spent = reservation.commit(0, input_tokens=0, success=False)
                else:  # a small real usage, some of it from the cache
                    used = rng.randint(0, 5)
                    cached = rng.randint(0, used) if key == ALPHA else 0
                    spent = reservation.commit(rng.randint(0, 2), input_tokens=used, cached_input_tokens=cached)
                logs[index].append((key, worst, spent))
        except BaseException as exc:
            errors.append(exc)

    def monitor() -> None:
        barrier.wait()
        while not stop.is_set():
            for s in reg.get_budget_status():
                seen.append(((s.key, s.period), s.spent, s.reserved))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    watcher = threading.Thread(target=monitor)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: interleave reservations as much as possible
    try:
        watcher.start()
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        stop.set()
        watcher.join(60)
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors
    assert not any(t.is_alive() for t in [*workers, watcher])

    # Offline checks of the log.
    commits = [(key, worst, spent) for log in logs for key, worst, spent in log if spent is not None]
    assert all(spent <= worst for _, worst, spent in commits)  # the guarantee's premise
    assert sum(refused) > 0  # the budgets were really contended
    assert seen  # the monitor saw the run
    for budget, spent, reserved in seen:
        assert spent + reserved <= limits[budget], (budget, spent, reserved)
    final = {(s.key, s.period): s for s in reg.get_budget_status()}
    total = sum((spent for _, _, spent in commits), Decimal(0))
    alpha_total = sum((spent for key, _, spent in commits if key == ALPHA), Decimal(0))
    assert final[(None, "month")].spent == total
    assert final[(ALPHA, "day")].spent == alpha_total
    for budget, limit in limits.items():
        assert final[budget].reserved == Decimal(0)
        assert final[budget].spent <= limit
    history = reg.get_usage_history()
    assert sum((e.cost for e in history), Decimal(0)) == total
    assert sum(e.requests for e in history) == len(commits)
    assert recorder.of("budget-exceeded") == []
    warnings = recorder.of("budget-warning")
    assert len(warnings) <= 2
    assert len({(w["key"], w["period"]) for w in warnings}) == len(warnings)  # once per budget and period
    for w in warnings:
        assert limits[(w["key"], w["period"])] * Decimal("0.8") <= w["spent"] <= w["limit"]

    # Fill what is left, one small request at a time: the budgets end full, not one cent over.
    while True:
        try:
            reg.acquire(BETA, 10).commit(0)  # 0.01
        except BudgetExceededError:
            break
    assert Decimal("0.99") < status(reg).spent <= Decimal(1)


def test_reservations_at_the_limit_never_overlap_past_it(reg: EnhancedModelRegistry) -> None:
    """8 threads acquire and cancel as fast as they can against a budget with room for exactly 3 requests; each
    reads the budget while it holds its reservation: never more than 3 are open at once, nothing is left over."""
    reg.set_budget("0.3", period="total")  # three requests of 100 input tokens (0.1 each)
    threads_n, rounds = 8, 6000
    barrier = threading.Barrier(threads_n)
    most: list[Decimal] = [Decimal(0)] * threads_n
    admitted = [0] * threads_n
    refused = [0] * threads_n
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                try:
                    reservation = reg.acquire(BETA, 100)
                except BudgetExceededError:
                    refused[index] += 1
                    continue
                admitted[index] += 1
                most[index] = max(most[index], status(reg, period="total").reserved)
                reservation.cancel()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors, errors
    assert sum(admitted) > 0
    assert sum(refused) > 0
    assert max(most) <= Decimal("0.3")
    final = status(reg, period="total")
    assert (final.spent, final.reserved) == (Decimal(0), Decimal(0))


# ------------------------------------------------------------------ usage history


def _two_days(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    clock.set(at(2024, 3, 12, 9))
    reg.record_usage(ALPHA, 1000, 100)  # 1000 + 200 = 1.2
    reg.record_usage(ALPHA, 500, 0, False)  # 0.5, failed but billed
    reg.record_usage(BETA, 100, 50)  # 100 + 100 = 0.2
    clock.set(at(2024, 3, 13, 23, 59, 59))
    reg.record_usage(ALPHA, 300, 10, cached_input_tokens=200)  # 100 * 1 + 200 * 0.1 + 10 * 2 = 140 -> 0.14
    reg.record_usage(ALPHA, 2000, 0)  # tier: 2000 * 2 = 4


def test_usage_history_per_model_and_utc_day(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    _two_days(reg, clock)
    alpha = reg.get_usage_history(ALPHA)
    assert [e.model_dump(by_alias=False) for e in alpha] == [
        {
            "key": ALPHA,
            "date": date(2024, 3, 12),
            "input_tokens": 1500,
            "output_tokens": 100,
            "cached_input_tokens": 0,
            "cache_write_tokens": 0,
            "requests": 2,
            "cost": Decimal("1.7"),
        },
        {
            "key": ALPHA,
            "date": date(2024, 3, 13),
            "input_tokens": 2300,
            "output_tokens": 10,
            "cached_input_tokens": 200,
            "cache_write_tokens": 0,
            "requests": 2,
            "cost": Decimal("4.14"),
        },
    ]
    everything = reg.get_usage_history()
    assert [(e.date, e.key, e.cost) for e in everything] == [
        (date(2024, 3, 12), ALPHA, Decimal("1.7")),
        (date(2024, 3, 12), BETA, Decimal("0.2")),
        (date(2024, 3, 13), ALPHA, Decimal("4.14")),
    ]
    assert [e.date for e in reg.get_usage_history(since=date(2024, 3, 13))] == [date(2024, 3, 13)]
    assert reg.get_usage_history(BETA, since=date(2024, 3, 13)) == []
    assert len(reg.get_usage_history(since=datetime(2024, 3, 12, 23, tzinfo=UTC))) == 3  # the day of that instant
    assert reg.get_usage_history(since=date(2024, 3, 14)) == []
    with pytest.raises(ModelNotFoundError):
        reg.get_usage_history("openai:nope")
    # a snapshot: changing it changes nothing
    alpha[0].requests = 99
    assert reg.get_usage_history(ALPHA)[0].requests == 2


def test_midnight_starts_a_new_history_day(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    clock.set(at(2024, 3, 13, 23, 59, 59))
    reg.record_usage(BETA, 100, 0)
    clock.set(at(2024, 3, 14))
    reg.record_usage(BETA, 200, 0)
    assert [(e.date, e.input_tokens) for e in reg.get_usage_history(BETA)] == [
        (date(2024, 3, 13), 100),
        (date(2024, 3, 14), 200),
    ]


def test_usage_history_since_an_aware_datetime_uses_its_utc_day(reg: EnhancedModelRegistry, clock: FakeClock) -> None:
    _two_days(reg, clock)
    since = datetime(2024, 3, 13, 1, tzinfo=timezone(timedelta(hours=5)))  # 2024-03-12 20:00 UTC
    assert [e.date for e in reg.get_usage_history(ALPHA, since=since)] == [date(2024, 3, 12), date(2024, 3, 13)]
    later = datetime(2024, 3, 12, 20, tzinfo=timezone(timedelta(hours=-5)))  # 2024-03-13 01:00 UTC
    assert [e.date for e in reg.get_usage_history(ALPHA, since=later)] == [date(2024, 3, 13)]


def test_usage_history_survives_save_and_load(
    reg: EnhancedModelRegistry, clock: FakeClock, tmp_path: Path, store: str
) -> None:
    _two_days(reg, clock)
    before = reg.get_usage_history()
    reg.save()
    doc = json.loads(reg.persistence_path.read_text())
    if not store.startswith("memory"):
        # A shared store keeps the history (every process reads it there): the file holds definitions only, and
        # a registry loading it on the same store sees the same history.
        assert "usageHistory" not in doc
        assert all("usageStats" not in model for model in doc["models"])
        with EnhancedModelRegistry(
            persistence_path=reg.persistence_path, auto_save=False, clock=clock, backend=store
        ) as other:
            assert other.load() == 2
            assert other.get_usage_history() == before
        return
    assert doc["usageHistory"][0] == {
        "key": ALPHA,
        "date": "2024-03-12",
        "inputTokens": 1500,
        "outputTokens": 100,
        "cachedInputTokens": 0,
        "cacheWriteTokens": 0,
        "requests": 2,
        "cost": "1.7",
    }
    with EnhancedModelRegistry(
        persistence_path=reg.persistence_path, auto_save=False, clock=clock, backend=store
    ) as other:
        assert other.load() == 2
        assert other.get_usage_history() == before
        other.set_budget(100, period="day")  # 2024-03-13: the loaded history counts
        assert status(other, period="day").spent == Decimal("4.14")
        other.record_usage(ALPHA, 1000, 0)  # adds to the loaded day
        assert other.get_usage_history(ALPHA)[-1].cost == Decimal("5.14")


def test_usage_history_survives_export_and_import(reg: EnhancedModelRegistry, clock: FakeClock, store: str) -> None:
    _two_days(reg, clock)
    text = reg.export_to_json()
    with EnhancedModelRegistry(auto_save=False, clock=clock, backend=store) as other:
        assert other.import_from_json(text) == 2
        assert other.get_usage_history() == reg.get_usage_history()
        other.set_budget(100, key=ALPHA, period="total")
        assert status(other, ALPHA, "total").spent == Decimal("5.84")  # 1.7 + 4.14


def test_invalid_usage_history_in_a_snapshot_is_rejected(
    reg: EnhancedModelRegistry, clock: FakeClock, store: str
) -> None:
    _two_days(reg, clock)
    doc = json.loads(reg.export_to_json())
    doc["usageHistory"][0]["cost"] = "-1"
    with (
        EnhancedModelRegistry(auto_save=False, clock=clock, backend=store) as other,
        pytest.raises(ConfigError, match="usageHistory"),
    ):
        other.import_from_json(json.dumps(doc))


def test_usage_history_is_bounded(
    reg: EnhancedModelRegistry, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    for day in range(1, 6):  # 2024-03-01 .. 2024-03-05, one request a day
        clock.set(at(2024, 3, day, 12))
        reg.record_usage(BETA, day * 100, 0)
    text = reg.export_to_json()
    assert len(reg.get_usage_history(BETA)) == 5
    if not store.startswith("memory"):
        # The Redis store's bound is its own (usage.lua: 400 days, the same number); a day past it drops the oldest.
        for day in range(400):
            clock.set(at(2024, 3, 6, 12) + day * 86_400)
            reg.record_usage(BETA, 1, 0)
        days = [e.date for e in reg.get_usage_history(BETA)]
        assert len(days) == cost_module.MAX_HISTORY_DAYS == 400
        assert days[0] == date(2024, 3, 6)
        assert days[-1] == date(2024, 3, 6) + timedelta(days=399)
        return
    monkeypatch.setattr(cost_module, "MAX_HISTORY_DAYS", 3)
    with EnhancedModelRegistry(auto_save=False, clock=clock, backend=store) as other:
        other.import_from_json(text)  # five days in the snapshot: the newest three are kept
        assert [e.date for e in other.get_usage_history(BETA)] == [
            date(2024, 3, 3),
            date(2024, 3, 4),
            date(2024, 3, 5),
        ]
        clock.set(at(2024, 3, 6, 12))
        other.record_usage(BETA, 600, 0)  # a new day: the oldest is dropped
        assert [e.date for e in other.get_usage_history(BETA)] == [
            date(2024, 3, 4),
            date(2024, 3, 5),
            date(2024, 3, 6),
        ]
        clock.set(at(2024, 3, 6, 13))
        other.record_usage(BETA, 1, 0)  # the same day: nothing more is dropped
        assert [e.input_tokens for e in other.get_usage_history(BETA)] == [400, 500, 601]
    with EnhancedModelRegistry(auto_save=False, clock=clock, backend=store) as fresh:
        key = fresh.register_model(define("beta", BETA_COST))
        for day in range(1, 6):
            clock.set(at(2024, 4, day, 12))
            fresh.record_usage(key, 100, 0)
            assert len(fresh.get_usage_history(key)) == min(day, 3)
        assert fresh.get_usage_history(key)[0].date == date(2024, 4, 3)
