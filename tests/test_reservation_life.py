"""No reservation lives for ever, none is billed at a price it did not reserve, and no wait or clock reading can
leave the registry stuck or poisoned."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import (
    BudgetExceededError,
    ConfigError,
    EnhancedModelRegistry,
    RateLimitTimeout,
)
from noa_ai_provider.cost import worst_case_cost
from noa_ai_provider.schemas import ModelCost
from noa_ai_provider.testing import FakeClock

from .samples import limited

M = 1_000_000


def make(tmp_path: Path, clock: FakeClock, backend: str, **kwargs: object) -> EnhancedModelRegistry:
    """A registry on ``backend`` (the test's ``store``)."""
    return EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json",
        auto_save=False,
        clock=clock,
        backend=backend,
        **kwargs,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- expiry


def test_an_open_reservation_expires_and_gives_everything_back(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000)
    registry = make(tmp_path, clock, store, reservation_timeout=60)
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerDay": 1_000}))
    registry.set_budget(1, period="day")
    reservation = registry.acquire(key, 500, 100)  # worst case 500 * 0.01/1K + 100 * 0.03/1K = 0.008
    assert reservation.expires_at == clock() + 60
    assert registry.get_budget_status()[0].reserved == Decimal("0.008")
    clock.advance(59)
    assert reservation.open
    clock.advance(1)
    assert registry.get_budget_status()[0].reserved == 0  # the sweep gave the budget hold back
    assert reservation.state == "expired"
    assert registry.check_rate_limit(key, 1_000).allowed  # and the day's tokens: 1,000 fit again
    reservation.cancel()  # a no-op now
    assert reservation.state == "expired"


def test_committing_an_expired_reservation_still_records_the_bill(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000)
    registry = make(tmp_path, clock, store, reservation_timeout=60)
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 500, 100)
    clock.advance(120)
    assert registry.check_rate_limit(key, 1_000).allowed
    assert reservation.commit(100) == Decimal("0.008")  # the provider billed it: recorded
    assert reservation.state == "committed"
    assert not registry.check_rate_limit(key, 401).allowed  # counted in the window at the commit's time
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_cost) == (1, Decimal("0.008"))


def test_a_new_budget_period_does_not_inherit_holds_of_expired_reservations(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_710_287_400)  # 2024-03-13 00:30 UTC
    registry = make(tmp_path, clock, store)  # the default timeout: 15 minutes
    key = registry.register_model(limited(None))
    registry.set_budget(1, period="day")
    forgotten = registry.acquire(key, 60_000, 0)  # 0.6 held
    clock.advance(86_400)  # the next day
    with_new = registry.acquire(key, 90_000, 0)  # 0.9: fits, the 0.6 hold is gone
    assert registry.get_budget_status()[0].reserved == Decimal("0.9")
    assert forgotten.state == "expired"
    with_new.cancel()


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "60", True])
def test_bad_reservation_timeouts_are_config_errors(tmp_path: Path, store: str, timeout: object) -> None:
    with pytest.raises(ConfigError, match="reservation_timeout"):
        make(tmp_path, FakeClock(), store, reservation_timeout=timeout)


# --------------------------------------------------------------------------- garbage collection


def test_a_reservation_collected_while_open_is_released_with_a_warning(tmp_path: Path, store: str) -> None:
    registry = make(tmp_path, FakeClock(), store)
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    registry.set_budget(1)
    with pytest.warns(ResourceWarning, match="garbage-collected while open"):
        registry.acquire(key, 100, 0)  # dropped at once: collected while open
    assert registry.check_rate_limit(key, 0).allowed  # the request slot came back
    assert registry.get_budget_status()[0].reserved == 0
    registry.acquire(key, 0).cancel()


def test_closed_reservations_are_collected_quietly(tmp_path: Path, store: str) -> None:
    registry = make(tmp_path, FakeClock(), store)
    key = registry.register_model(limited({"requestsPerMinute": 10}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.acquire(key, 1).commit(1)
        registry.acquire(key, 1).cancel()
        with registry.acquire(key, 1):
            pass
        gc.collect()


# --------------------------------------------------------------------------- prices between acquire and commit


def test_a_commit_bills_at_the_price_reserved(tmp_path: Path, store: str) -> None:
    registry = make(tmp_path, FakeClock(), store)
    key = registry.register_model(limited(None))  # 0.01 / 0.03 per 1K
    registry.set_budget(Decimal("0.02"))
    reservation = registry.acquire(key, 1_000, 300)  # worst case 0.019, within 0.02
    registry.update_model(key, {"cost": {"inputTokens": 1, "outputTokens": 3, "per": 1000}})  # 100 times dearer
    assert reservation.commit(300) == Decimal("0.019")  # at the reserved prices
    status = registry.get_budget_status()[0]
    assert (status.spent, status.reserved) == (Decimal("0.019"), 0)
    assert registry.estimate_cost(key, 1_000, 300) == Decimal("1.9")  # new requests: the new price


def test_the_worst_case_covers_a_dearer_lower_tier() -> None:
    # Above 100k input the input price drops (a volume discount): a commit of fewer tokens can cost more per token.
    cost = ModelCost.model_validate(
        {"inputTokens": 4, "outputTokens": 10, "per": M, "tiers": [{"aboveInputTokens": 100_000, "inputTokens": 1}]}
    )
    worst = worst_case_cost(cost, 200_000, 0)
    assert worst == Decimal("0.8")  # 200,000 at the base 4/M, not at the tier's 1/M (0.2)
    assert worst >= max(Decimal(n * 4) / M if n <= 100_000 else Decimal(n) / M for n in (100_000, 100_001, 200_000))


def test_a_budget_is_not_overspent_through_a_dearer_lower_tier(tmp_path: Path, store: str) -> None:
    registry = make(tmp_path, FakeClock(), store)
    key = registry.register_model(
        limited(None)
        | {
            "cost": {
                "inputTokens": 4,
                "outputTokens": 10,
                "per": M,
                "tiers": [{"aboveInputTokens": 100_000, "inputTokens": 1}],
            }
        }
    )
    registry.set_budget(Decimal("0.5"))
    with pytest.raises(BudgetExceededError):
        registry.acquire(key, 200_000, 0)  # a commit of 100,000 tokens could cost 0.4; of 200,000 0.2; reserved 0.8


# --------------------------------------------------------------------------- waiting and the clock


def test_auto_advancing_clock_jumps_to_the_next_wake_up(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000, auto_advance=True)
    registry = make(tmp_path, clock, store)
    key = registry.register_model(limited({"requestsPerMinute": 2}))
    started = time.monotonic()
    stamps = []
    for _ in range(6):
        reservation = registry.acquire(key, 0, wait=True, timeout=3_600)
        stamps.append(reservation.timestamp - 1_700_000_000)
        reservation.commit(0)
    assert stamps == [0, 0, 60, 60, 120, 120]  # two requests a minute, exactly, on the registry's clock
    assert time.monotonic() - started < 5  # three simulated minutes in a moment


def test_auto_advancing_clock_with_async_waiters(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000, auto_advance=True)
    registry = make(tmp_path, clock, store)
    key = registry.register_model(limited({"requestsPerMinute": 1}))

    async def main() -> list[float]:
        out = []
        for _ in range(3):
            async with await registry.acquire_async(key, 0, wait=True, timeout=600) as reservation:
                out.append(reservation.timestamp - 1_700_000_000)
                reservation.commit(0)
        return out

    assert asyncio.run(main()) == [0, 60, 120]


def test_auto_advance_switched_on_or_off_after_the_registry_exists(tmp_path: Path, store: str) -> None:
    # It used to be read once, when the registry was made: switched on later, a waiter slept its real timeout.
    clock = FakeClock(1_700_000_000)
    registry = make(tmp_path, clock, store)
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    registry.acquire(key, 0).commit(0)
    clock.auto_advance = True
    started = time.monotonic()
    reservation = registry.acquire(key, 0, wait=True, timeout=3_600)
    assert reservation.timestamp == 1_700_000_060
    reservation.commit(0)
    assert time.monotonic() - started < 5
    clock.auto_advance = False  # and off again: the clock stays put, the wait ends at its real-time timeout
    with pytest.raises(RateLimitTimeout):
        registry.acquire(key, 0, wait=True, timeout=0.3)
    assert clock() == 1_700_000_060


def test_auto_advance_times_out_on_the_registry_clock(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000, auto_advance=True)
    registry = make(tmp_path, clock, store)
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    held = registry.acquire(key, 0)
    with pytest.raises(RateLimitTimeout):
        registry.acquire(key, 0, wait=True, timeout=30)
    assert clock() == 1_700_000_030  # jumped to the deadline, not past it
    held.cancel()


@pytest.mark.parametrize(
    "reading",
    [math.nan, math.inf, -math.inf, -1.0, 1.7e12, "soon", None],
    ids=["nan", "inf", "-inf", "negative", "milliseconds", "string", "none"],
)
def test_a_bad_clock_reading_changes_nothing(tmp_path: Path, store: str, reading: object) -> None:
    value: list[object] = [1_700_000_000.0]
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json",
        auto_save=False,
        clock=lambda: value[0],  # type: ignore[arg-type,return-value]
        backend=store,
    )
    key = registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000}))
    registry.set_budget(1)
    registry.record_usage(key, 100, 0)
    value[0] = reading
    for call in (
        lambda: registry.record_usage(key, 100, 0),
        lambda: registry.acquire(key, 100),
        lambda: registry.check_rate_limit(key, 100),
    ):
        with pytest.raises(ConfigError, match="clock returned"):
            call()
    value[0] = 1_700_000_001.0
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens) == (1, 100)
    assert registry.get_budget_status()[0].spent == Decimal("0.001")
    assert registry.check_rate_limit(key, 900).allowed  # the windows hold exactly the one request
    assert not registry.check_rate_limit(key, 901).allowed


def test_a_clock_that_jumps_back_never_admits_early(tmp_path: Path, store: str) -> None:
    clock = FakeClock(1_700_000_000)
    registry = make(tmp_path, clock, store)
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    registry.acquire(key, 0).commit(0)
    clock.set(1_700_000_000 - 3_600)  # an hour back (an NTP step)
    assert not registry.check_rate_limit(key, 0).allowed
    clock.set(1_700_000_059)
    assert not registry.check_rate_limit(key, 0).allowed
    clock.set(1_700_000_060)
    assert registry.check_rate_limit(key, 0).allowed


def test_a_registry_loaded_handler_may_save(tmp_path: Path, store: str) -> None:
    registry = make(tmp_path, FakeClock(), store)
    registry.register_model(limited(None))
    registry.save()
    other = make(tmp_path, FakeClock(), store)
    saved = []
    other.on("registry-loaded", lambda sender, **kw: (sender.save(), saved.append(kw["path"])))
    done = threading.Event()

    def load() -> None:
        other.load()
        done.set()

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    assert done.wait(10), "load() deadlocked: registry-loaded was emitted under the save lock"
    assert saved == [str(other.persistence_path)]


def test_settled_reservations_leave_nothing_behind(tmp_path: Path, store: str) -> None:
    # Their holds wait in the expiry queue until they would expire (15 minutes): the queue is compacted, so memory
    # follows the open reservations, not the traffic.
    import tracemalloc

    registry = make(tmp_path, FakeClock(), store)
    key = registry.register_model(limited(None))
    for _ in range(1_000):
        registry.acquire(key, 1, 0).commit(0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            registry.acquire(key, 1, 0).commit(0)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, grown  # about 6 MB if every settled hold were kept
