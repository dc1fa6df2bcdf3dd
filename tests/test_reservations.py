"""Atomic reservations: ``acquire`` admits and reserves, ``Reservation.commit`` / ``cancel`` settle, with a FakeClock.

Times start at 1.7e9 s; every offset used here is a small integer (or a sum of powers of two), so times and the
``retry_after`` values derived from them are exact doubles and are compared with ``==``.
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, InvalidUsageError, ModelNotFoundError, RegistryError
from noa_ai_provider.errors import RateLimitExceeded, RateLimitTimeout
from noa_ai_provider.ratelimit import DAY, DAY_BUCKET
from noa_ai_provider.reservation import Reservation
from noa_ai_provider.testing import EventRecorder, FakeClock, waiting, window_totals

from .conftest import fresh
from .samples import hold, limited

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

RPM, TPM, RPD, TPD = "requests per minute", "tokens per minute", "requests per day", "tokens per day"
ITPM, OTPM = "input tokens per minute", "output tokens per minute"
PIN, POUT, PER = Decimal("0.01"), Decimal("0.03"), 1000  # the prices of samples.limited()


def cost(i: int, o: int) -> Decimal:
    with decimal.localcontext(prec=60):
        return (i * PIN + o * POUT) / PER


def allowed(registry: EnhancedModelRegistry, key: str, tokens: int, output_tokens: int | None = None) -> bool:
    return registry.check_rate_limit(key, tokens, output_tokens=output_tokens).allowed


def refusal(registry: EnhancedModelRegistry, key: str, *args: Any, **kwargs: Any) -> RateLimitExceeded:
    with pytest.raises(RateLimitExceeded) as info:
        registry.acquire(key, *args, **kwargs)
    return info.value


def token_capacity(registry: EnhancedModelRegistry, key: str, upper: int) -> int:
    """The largest ``tokens_to_send`` (all input) the model admits now, by bisection over [0, upper]."""
    if not allowed(registry, key, 0):
        return -1
    lo, hi = 0, upper + 1  # lo allowed, hi refused (or beyond)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if allowed(registry, key, mid):
            lo = mid
        else:
            hi = mid
    return lo


def leave_by(reservation: Reservation, error: BaseException, inside: Callable[[Reservation], object]) -> None:
    """Enter ``reservation`` as a context manager, run ``inside`` in the block, then raise ``error`` from it."""
    with reservation as entered:
        assert entered is reservation
        inside(entered)
        raise error


# --------------------------------------------------------------------------- admission and reserving


def test_acquire_admits_and_check_rate_limit_sees_the_open_reservation(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000}))
    t0 = clock()
    first = registry.acquire(key, 300, 200)
    assert isinstance(first, Reservation)
    assert first.open
    assert first.state == "open"
    assert first.key == key
    assert (first.input_tokens, first.max_output_tokens) == (300, 200)
    assert first.timestamp == t0
    assert first.reserved_at.timestamp() == t0
    assert first.reserved_at.utcoffset() is not None
    assert first.cost is None
    # 500 of 1000 tokens and 1 of 2 requests are held: check_rate_limit counts them, and stays read-only.
    for _ in range(5):
        assert allowed(registry, key, 500)
        assert not allowed(registry, key, 501)
    check = registry.check_rate_limit(key, 501)
    assert (check.reason, check.retry_after) == (TPM, 60.0)
    clock.advance(10)
    second = registry.acquire(key, 500)
    check = registry.check_rate_limit(key, 0)
    assert (check.allowed, check.reason, check.retry_after) == (False, RPM, 50.0)
    # Nothing was recorded as usage yet: reserving is not recording.
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens, stats.total_cost) == (0, 0, Decimal(0))
    second.cancel()
    first.cancel()
    assert allowed(registry, key, 1_000)


def test_model_without_rate_limit_always_admits(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited(None))
    reservations = [registry.acquire(key, 10**9, 10**9) for _ in range(100)]
    assert reservations[0].commit(5, input_tokens=10) == cost(10, 5)
    for reservation in reservations[1:]:
        reservation.cancel()
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 1


def test_refusal_by_tokens_consumes_no_request(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000, "requestsPerDay": 2}))
    hold(registry.acquire(key, 900))
    for _ in range(5):
        error = refusal(registry, key, 200)
        assert (error.limit, error.retry_after) == (TPM, 60.0)
    # Five refusals took nothing from the request windows (per minute or per day): the second request fits.
    clock.advance(1)
    last = registry.acquire(key, 100)
    assert last.open
    assert not allowed(registry, key, 0)
    assert registry.check_rate_limit(key, 0).reason == RPD  # the longest wait names the limit
    # And nothing from the token window either: exactly 1000 are held.
    totals = window_totals(registry, key)
    assert totals == {"requests_per_minute": 2, "tokens_per_minute": 1_000, "requests_per_day": 2}


def test_refusal_by_requests_consumes_no_tokens(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(
        limited({"requestsPerMinute": 1, "tokensPerMinute": 1_000, "inputTokensPerMinute": 1_000})
    )
    t0 = clock()
    hold(registry.acquire(key, 0))  # the one request of this minute, no tokens
    clock.advance(30)
    for _ in range(3):
        error = refusal(registry, key, 500)
        assert (error.key, error.limit, error.retry_after) == (key, RPM, 30.0)
    # At t0 + 60 the request has expired; had the refused 500 tokens been taken at t0 + 30 they would still count.
    clock.set(t0 + 60)
    assert allowed(registry, key, 1_000)
    hold(registry.acquire(key, 1_000))


def test_refusal_by_input_limit_consumes_nothing_elsewhere(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(
        limited(
            {
                "requestsPerMinute": 3,
                "tokensPerMinute": 10_000,
                "inputTokensPerMinute": 1_000,
                "outputTokensPerMinute": 600,
                "tokensPerDay": 50_000,
            }
        )
    )
    hold(registry.acquire(key, 800, 100))
    error = refusal(registry, key, 300, 100)
    assert (error.limit, error.retry_after) == (ITPM, 60.0)
    totals = window_totals(registry, key)
    assert totals == {
        "requests_per_minute": 1,
        "tokens_per_minute": 900,
        "input_tokens_per_minute": 800,
        "output_tokens_per_minute": 100,
        "tokens_per_day": 900,
    }
    # What is left: 200 input, 500 output.
    hold(registry.acquire(key, 200, 500))
    error = refusal(registry, key, 0, 1)
    assert error.limit == OTPM


def test_rate_limit_exceeded_carries_key_limit_and_exact_retry_after(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000}))
    hold(registry.acquire(key, 100))
    clock.advance(10)
    hold(registry.acquire(key, 100))
    clock.advance(10)
    error = refusal(registry, key, 100)
    assert type(error) is RateLimitExceeded
    assert isinstance(error, RegistryError)
    assert (error.key, error.limit, error.retry_after) == (key, RPM, 40.0)
    assert key in str(error)
    assert RPM in str(error)
    clock.advance(39)
    assert refusal(registry, key, 100).retry_after == 1.0
    clock.advance(1)  # the first request is now exactly 60 s old: it no longer counts
    hold(registry.acquire(key, 100))


def test_retry_after_is_the_longest_wait_over_all_limits(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000}))
    hold(registry.acquire(key, 900))  # t0: 900 tokens
    clock.advance(20)
    hold(registry.acquire(key, 50))  # t0 + 20: 950 tokens, 2 requests
    clock.advance(5)
    # Requests free at t0 + 60 (35 s); 100 tokens need the 900 gone, also at t0 + 60.
    error = refusal(registry, key, 100)
    assert error.retry_after == 35.0
    # 960 tokens need the 50 at t0 + 20 gone too: t0 + 80, 55 s from now; that binds.
    error = refusal(registry, key, 960)
    assert (error.limit, error.retry_after) == (TPM, 55.0)


@pytest.mark.parametrize("wait", [False, True])
def test_a_request_alone_over_a_per_minute_limit_raises_at_once_with_no_retry_after(
    registry: EnhancedModelRegistry, wait: bool
) -> None:
    key = registry.register_model(
        limited({"tokensPerMinute": 1_000, "inputTokensPerMinute": 900, "outputTokensPerMinute": 500})
    )
    for args, limit in [((800, 201), TPM), ((901, 0), ITPM), ((0, 501), OTPM)]:
        error = refusal(registry, key, *args, wait=wait, timeout=None)
        assert type(error) is RateLimitExceeded  # not a timeout: it can never fit
        assert (error.key, error.limit, error.retry_after) == (key, limit, None)
        assert "never" in str(error)
    # Exactly at the limits it fits.
    registry.acquire(key, 500, 500).cancel()
    registry.acquire(key, 900, 0).cancel()


def test_a_request_alone_over_a_per_day_limit_never_fits(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"tokensPerDay": 1_000}))
    error = refusal(registry, key, 1_001, wait=True)
    assert (error.limit, error.retry_after) == (TPD, None)


def test_rate_limited_event_payload(registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 100}))
    hold(registry.acquire(key, 10))
    assert events.of("rate-limited") == []
    clock.advance(15)
    refusal(registry, key, 10)
    refusal(registry, key, 101)
    assert events.of("rate-limited") == [
        {"key": key, "limit": RPM, "retry_after": 45.0},
        {"key": key, "limit": TPM, "retry_after": None},
    ]
    # check_rate_limit is read-only and quiet.
    registry.check_rate_limit(key, 10)
    assert len(events.of("rate-limited")) == 2


# --------------------------------------------------------------------------- per-day and input/output limits


@pytest.fixture
def day_registry(tmp_path: Path, clock: FakeClock, store: str) -> Iterator[EnhancedModelRegistry]:
    """A registry whose reservations may stay open for hours (they expire after 15 minutes by default)."""
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=clock, reservation_timeout=2 * DAY, backend=store
    ) as reg:
        yield reg


def test_tokens_per_day_is_reserved_and_corrected(day_registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    registry = day_registry
    key = registry.register_model(limited({"tokensPerDay": 1_000}))
    reservation = registry.acquire(key, 600, 200)
    error = refusal(registry, key, 201)
    assert error.limit == TPD
    assert error.retry_after is not None
    # Per-day windows are bucketed: the wait is a day, plus at most one bucket.
    assert DAY <= error.retry_after <= DAY + DAY_BUCKET
    assert allowed(registry, key, 200)
    clock.advance(3_600)
    assert reservation.commit(50, input_tokens=50) == cost(50, 50)
    assert allowed(registry, key, 900)
    assert not allowed(registry, key, 901)
    clock.advance(DAY - 3_600 + DAY_BUCKET)
    assert allowed(registry, key, 1_000)


def test_requests_per_day_counts_reservations(day_registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    registry = day_registry
    key = registry.register_model(limited({"requestsPerDay": 2}))
    first = registry.acquire(key, 1)
    clock.advance(3_600)
    second = registry.acquire(key, 1)
    assert refusal(registry, key, 0).limit == RPD
    second.cancel()
    third = registry.acquire(key, 1)
    first.commit(0)
    third.commit(0)
    clock.advance(DAY - 3_600 + DAY_BUCKET)  # the first request's day is over; the third's is not
    hold(registry.acquire(key, 0))
    assert refusal(registry, key, 0).limit == RPD


def test_input_and_output_limits_anthropic_style(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(limited({"inputTokensPerMinute": 1_000, "outputTokensPerMinute": 500}))
    hold(registry.acquire(key, 600, 400))
    assert (refusal(registry, key, 500).limit, refusal(registry, key, 500).retry_after) == (ITPM, 60.0)
    clock.advance(6)
    error = refusal(registry, key, 0, 200)
    assert (error.limit, error.retry_after) == (OTPM, 54.0)
    # check_rate_limit splits tokens_to_send with output_tokens (default: all input).
    assert allowed(registry, key, 400)
    assert not allowed(registry, key, 401)
    assert allowed(registry, key, 500, output_tokens=100)
    assert not allowed(registry, key, 501, output_tokens=101)
    check = registry.check_rate_limit(key, 101, output_tokens=101)
    assert (check.reason, check.retry_after) == (OTPM, 54.0)
    hold(registry.acquire(key, 400, 100))
    assert not allowed(registry, key, 1)
    assert allowed(registry, key, 0)  # no request limit, no token left: a zero-token request still fits


# --------------------------------------------------------------------------- commit


def test_commit_returns_the_exact_cost_and_records_like_record_usage(
    registry: EnhancedModelRegistry, clock: FakeClock, tmp_path: Any, store: str
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 100, "tokensPerMinute": 10**7}))
    twin_clock = FakeClock(clock())
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "twin.json", auto_save=False, clock=twin_clock, backend=fresh(store)
    ) as twin:
        twin_key = twin.register_model(limited({"requestsPerMinute": 100, "tokensPerMinute": 10**7}))
        assert twin_key == key
        ours, theirs = EventRecorder().attach(registry), EventRecorder().attach(twin)
        plan = [(1234, 777, True), (1, 0, False), (0, 5_000_000, True), (999_999, 3, True)]
        for i, o, ok in plan:
            reservation = registry.acquire(key, i, o + 10)
            got = reservation.commit(o, success=ok)
            expected = twin.record_usage(key, i, o, success=ok)
            assert got == expected == cost(i, o)
            assert isinstance(got, Decimal)
            assert reservation.cost == got
            assert reservation.state == "committed"
            assert not reservation.open
            clock.advance(1)
            twin_clock.advance(1)
        assert registry.get_usage_stats(key) == twin.get_usage_stats(key)
        assert ours.of("usage-recorded") == theirs.of("usage-recorded")
        assert ours.names() == ["usage-recorded"] * len(plan)
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (4, 3, 1)
        assert stats.total_cost == sum((cost(i, o) for i, o, _ in plan), Decimal(0))


def test_commit_with_fewer_tokens_corrects_at_the_original_time(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 10, "tokensPerMinute": 1_000}))
    t0 = clock()
    reservation = registry.acquire(key, 400, 600)
    assert token_capacity(registry, key, 1_000) == 0
    clock.set(t0 + 30)
    reservation.commit(6, input_tokens=4)
    # At t0 + 30 the window holds the 10 tokens really used, timed at t0 ...
    assert token_capacity(registry, key, 1_000) == 990
    check = registry.check_rate_limit(key, 991)
    assert (check.reason, check.retry_after) == (TPM, 30.0)  # ... so they leave at t0 + 60, not t0 + 90
    clock.set(t0 + 59)
    assert token_capacity(registry, key, 1_000) == 990
    clock.set(t0 + 60)
    assert token_capacity(registry, key, 1_000) == 1_000


def test_commit_with_more_tokens_corrects_at_the_original_time(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(
        limited({"tokensPerMinute": 1_000, "inputTokensPerMinute": 1_000, "outputTokensPerMinute": 1_000})
    )
    t0 = clock()
    reservation = registry.acquire(key, 50, 50)
    clock.set(t0 + 10)
    assert reservation.commit(250, input_tokens=50) == cost(50, 250)
    assert token_capacity(registry, key, 1_000) == 700
    check = registry.check_rate_limit(key, 200, output_tokens=200)
    assert check.allowed
    check = registry.check_rate_limit(key, 701, output_tokens=0)
    assert (check.reason, check.retry_after) == (TPM, 50.0)
    check = registry.check_rate_limit(key, 751, output_tokens=751)
    assert (check.reason, check.retry_after) == (TPM, 50.0)  # the output limit waits as long
    clock.set(t0 + 60)
    assert token_capacity(registry, key, 1_000) == 1_000


def test_commit_with_an_input_tokens_override(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"inputTokensPerMinute": 1_000, "outputTokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100, 50)
    assert reservation.commit(20, input_tokens=40) == cost(40, 20)
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.total_input_tokens, stats.total_output_tokens, stats.total_cost) == (40, 20, cost(40, 20))
    (payload,) = events.of("usage-recorded")
    assert payload == {
        "key": key,
        "input_tokens": 40,
        "output_tokens": 20,
        "cost": cost(40, 20),
        "total_cost": cost(40, 20),
    }
    totals = window_totals(registry, key)
    assert totals == {"input_tokens_per_minute": 40, "output_tokens_per_minute": 20}
    assert reservation.input_tokens == 100  # the reservation still says what was reserved


def test_commit_is_idempotent(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100, 100)
    first = reservation.commit(30, success=True)
    before = registry.get_usage_stats(key)
    capacity = token_capacity(registry, key, 1_000)
    assert capacity == 870
    again = reservation.commit(99, input_tokens=1, success=False)
    assert again == first == cost(100, 30)
    assert registry.get_usage_stats(key) == before
    assert token_capacity(registry, key, 1_000) == capacity
    assert len(events.of("usage-recorded")) == 1
    reservation.cancel()  # cancel after commit: nothing happens
    assert reservation.state == "committed"
    assert registry.get_usage_stats(key) == before
    assert token_capacity(registry, key, 1_000) == capacity


def test_commit_with_zero_tokens_is_a_request_without_tokens(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 100}))
    assert registry.acquire(key, 60, 40).commit(0, input_tokens=0) == Decimal(0)
    check = registry.check_rate_limit(key, 100)
    assert check.reason == RPM  # the request counts, the tokens do not
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens, stats.total_output_tokens) == (1, 0, 0)


# --------------------------------------------------------------------------- cancel


def test_cancel_gives_the_capacity_back(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 1_000, "tokensPerDay": 1_000}))
    reservation = registry.acquire(key, 700, 300)
    assert not allowed(registry, key, 0)
    assert reservation.cancel() is None
    assert reservation.state == "cancelled"
    assert not reservation.open
    assert reservation.cost is None
    assert token_capacity(registry, key, 1_000) == 1_000
    again = registry.acquire(key, 1_000)
    reservation.cancel()  # idempotent: releasing twice must not free the new reservation's capacity
    assert not allowed(registry, key, 0)
    again.cancel()
    assert token_capacity(registry, key, 1_000) == 1_000
    assert events.of("usage-recorded") == []
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 0


def test_commit_after_cancel_raises_and_records_nothing(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 10)
    reservation.cancel()
    with pytest.raises(InvalidUsageError, match="cancelled"):
        reservation.commit(5)
    assert reservation.state == "cancelled"
    assert events.of("usage-recorded") == []
    assert token_capacity(registry, key, 1_000) == 1_000


def test_cancelling_an_older_reservation_keeps_the_newer_one(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 5, "tokensPerMinute": 1_000}))
    t0 = clock()
    old = registry.acquire(key, 300)
    clock.advance(10)
    new = registry.acquire(key, 200)
    clock.advance(10)
    record = registry.acquire(key, 100)
    record.commit(0)
    old.cancel()
    assert token_capacity(registry, key, 1_000) == 700
    check = registry.check_rate_limit(key, 701)
    assert check.retry_after == 50.0  # the 200 at t0 + 10 leaves at t0 + 70, 50 s from t0 + 20
    new.commit(50, input_tokens=0)
    assert token_capacity(registry, key, 1_000) == 850
    clock.set(t0 + 70)
    assert token_capacity(registry, key, 1_000) == 900
    clock.set(t0 + 80)
    assert token_capacity(registry, key, 1_000) == 1_000


# --------------------------------------------------------------------------- the context manager


def test_with_block_without_decision_cancels(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 1_000}))
    with registry.acquire(key, 500, 500) as reservation:
        assert isinstance(reservation, Reservation)
        assert not allowed(registry, key, 0)
    assert reservation.state == "cancelled"
    assert token_capacity(registry, key, 1_000) == 1_000
    assert events.of("usage-recorded") == []


def test_with_block_left_by_an_exception_releases_and_counts_a_failed_request_at_zero(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    # The exception may have come before the provider billed anything: not billed as if it had been.
    key = registry.register_model(limited({"requestsPerMinute": 5, "tokensPerMinute": 1_000}))

    class Boom(Exception):
        pass

    reservation = registry.acquire(key, 300, 500)
    with pytest.raises(Boom, match="provider down"):
        leave_by(reservation, Boom("provider down"), lambda _: clock.advance(5))
    assert reservation.state == "committed"
    assert reservation.cost == 0
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (1, 0, 1)
    assert (stats.total_input_tokens, stats.total_output_tokens, stats.total_cost) == (0, 0, Decimal(0))
    assert events.of("usage-recorded") == [
        {"key": key, "input_tokens": 0, "output_tokens": 0, "cost": Decimal(0), "total_cost": Decimal(0)}
    ]
    # Every hold was given back: the whole minute's tokens and requests are free again.
    assert token_capacity(registry, key, 1_000) == 1_000
    held = [registry.acquire(key, 1, 0) for _ in range(5)]
    assert not registry.check_rate_limit(key, 1).allowed
    for r in held:
        r.cancel()


def test_a_caller_who_knows_the_call_was_billed_commits_inside_the_block(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))

    class Boom(Exception):
        pass

    box: list[Reservation] = []

    def call() -> None:
        with registry.acquire(key, 300, 500) as reservation:
            box.append(reservation)
            reservation.commit(20)  # the provider answered, then our code failed
            raise Boom

    with pytest.raises(Boom):
        call()
    assert box[0].cost == cost(300, 20)
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.failed_requests, stats.total_cost) == (1, 0, cost(300, 20))


def test_with_block_after_commit_does_nothing_more(registry: EnhancedModelRegistry, events: EventRecorder) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    with registry.acquire(key, 100, 100) as reservation:
        reservation.commit(40)
    assert reservation.state == "committed"
    second = registry.acquire(key, 100, 100)
    with pytest.raises(KeyError):
        leave_by(second, KeyError("after the commit"), lambda r: r.commit(10, input_tokens=20))
    assert second.cost == cost(20, 10)
    assert [p["cost"] for p in events.of("usage-recorded")] == [cost(100, 40), cost(20, 10)]
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.failed_requests) == (2, 0)
    assert token_capacity(registry, key, 1_000) == 1_000 - 140 - 30


def test_with_block_cancelled_inside_then_exception_records_nothing(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100)
    with pytest.raises(RuntimeError):
        leave_by(reservation, RuntimeError("x"), Reservation.cancel)
    assert reservation.state == "cancelled"
    assert events.of("usage-recorded") == []
    assert token_capacity(registry, key, 1_000) == 1_000


# --------------------------------------------------------------------------- the model changing underneath


def test_commit_after_unregistering_the_model_raises_model_not_found(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100)
    assert registry.unregister_model(key)
    with pytest.raises(ModelNotFoundError) as info:
        reservation.commit(10)
    assert info.value.key == key
    assert isinstance(info.value, KeyError)
    assert not reservation.open
    assert events.of("usage-recorded") == []
    reservation.cancel()  # nothing left to release; no error
    # Registered again: a fresh model, with none of the old reservation counted.
    registry.register_model(limited({"tokensPerMinute": 1_000}))
    assert token_capacity(registry, key, 1_000) == 1_000


def test_exception_in_with_block_after_unregistering_still_propagates(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100)
    with pytest.raises(ValueError, match="the caller's"):
        leave_by(reservation, ValueError("the caller's error"), lambda _: registry.unregister_model(key))
    assert reservation.state == "cancelled"
    assert events.of("usage-recorded") == []


def test_cancel_after_unregistering_is_quiet(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100)
    registry.unregister_model(key)
    reservation.cancel()
    assert reservation.state == "cancelled"


def test_commit_after_the_model_was_registered_again_counts_in_the_new_windows(
    registry: EnhancedModelRegistry, clock: FakeClock, store: str
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 500)
    registry.unregister_model(key)
    registry.register_model(limited({"tokensPerMinute": 1_000}))
    assert token_capacity(registry, key, 1_000) == 500  # the windows came back with the key: the 500 still count
    clock.advance(30)
    assert reservation.commit(0, input_tokens=100) == cost(100, 0)
    assert token_capacity(registry, key, 1_000) == 900
    clock.advance(59)
    if store.startswith("memory"):  # counted at the commit, in the new model's window
        assert token_capacity(registry, key, 1_000) == 900
    else:
        # A shared store never forgets a model because one registry removed it (other processes may serve it):
        # the reservation is still open in its windows, and is corrected at its own time, which has left the window.
        assert token_capacity(registry, key, 1_000) == 1_000
    clock.advance(1)
    assert token_capacity(registry, key, 1_000) == 1_000
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 1


def test_changing_the_rate_limit_keeps_an_open_reservation_counted(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 10, "tokensPerMinute": 1_000}))
    t0 = clock()
    reservation = registry.acquire(key, 800)
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 10, "tokensPerMinute": 2_000}})
    assert token_capacity(registry, key, 2_000) == 1_200
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 10, "tokensPerMinute": 500}})
    check = registry.check_rate_limit(key, 0)
    assert (check.allowed, check.reason, check.retry_after) == (False, TPM, 60.0)
    clock.set(t0 + 10)
    reservation.commit(0, input_tokens=100)
    # Corrected in the new window, at the reservation's time.
    assert token_capacity(registry, key, 500) == 400
    assert registry.check_rate_limit(key, 401).retry_after == 50.0
    registry.update_model(key, {"rateLimit": {"tokensPerMinute": 1_000, "tokensPerDay": 10_000}})
    assert token_capacity(registry, key, 1_000) == 900
    clock.set(t0 + 60)
    assert token_capacity(registry, key, 1_000) == 1_000


def test_removing_the_rate_limit_with_an_open_reservation(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 800)
    registry.update_model(key, {"rateLimit": None})
    assert allowed(registry, key, 10**6)
    assert reservation.commit(1) == cost(800, 1)
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 5, "tokensPerMinute": 1_000}})
    # The limit set again still sees the minute's traffic (the commit's 801 tokens): only 199 more fit.
    assert allowed(registry, key, 199)
    assert not allowed(registry, key, 200)


def test_status_updates_do_not_lose_reservations(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 600)
    registry.update_model_status(key, "deprecated")
    registry.register_model(limited({"tokensPerMinute": 1_000}) | {"name": "Renamed"})
    assert token_capacity(registry, key, 1_000) == 400
    reservation.commit(0, input_tokens=100)
    assert token_capacity(registry, key, 1_000) == 900


# --------------------------------------------------------------------------- bad arguments and errors


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((-1,), {}),
        ((1, -1), {}),
        ((True,), {}),
        ((1, False), {}),
        ((1.0,), {}),
        ((1, 2.5), {}),
        (("10",), {}),
        ((None,), {}),
        ((1,), {"timeout": -1}),
        ((1,), {"timeout": "1"}),
        ((1,), {"timeout": True}),
        ((1,), {"timeout": float("nan")}),
        ((1,), {"wait": True, "timeout": -0.5}),
    ],
)
def test_acquire_rejects_bad_arguments(
    registry: EnhancedModelRegistry, events: EventRecorder, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 1_000}))
    with pytest.raises(InvalidUsageError):
        registry.acquire(key, *args, **kwargs)
    assert allowed(registry, key, 1_000)  # nothing reserved
    assert events.of("rate-limited") == []


def test_acquire_async_rejects_bad_arguments(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    with pytest.raises(InvalidUsageError):
        asyncio.run(registry.acquire_async(key, -1))
    with pytest.raises(InvalidUsageError):
        asyncio.run(registry.acquire_async(key, 1, wait=True, timeout=-1))
    assert allowed(registry, key, 0)


def test_acquire_unknown_key(registry: EnhancedModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.acquire("openai:nope", 1)
    with pytest.raises(ModelNotFoundError):
        registry.acquire("openai:nope", 1, wait=True, timeout=1)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((-1,), {}),
        ((True,), {}),
        ((1.5,), {}),
        ((1,), {"input_tokens": -3}),
        ((1,), {"input_tokens": False}),
        ((1,), {"success": "yes"}),
        ((1,), {"success": 1}),
    ],
)
def test_commit_rejects_bad_arguments_and_stays_open(
    registry: EnhancedModelRegistry, events: EventRecorder, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    reservation = registry.acquire(key, 100, 100)
    with pytest.raises(InvalidUsageError):
        reservation.commit(*args, **kwargs)
    assert reservation.open
    assert events.of("usage-recorded") == []
    assert token_capacity(registry, key, 1_000) == 800
    assert reservation.commit(1) == cost(100, 1)
    assert token_capacity(registry, key, 1_000) == 899


def test_rate_limit_timeout_is_both_exceeded_and_timeout_error(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    assert issubclass(RateLimitTimeout, RateLimitExceeded)
    assert issubclass(RateLimitTimeout, TimeoutError)
    assert issubclass(RateLimitExceeded, RegistryError)
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold(registry.acquire(key, 0))
    clock.advance(20)
    # timeout=0 with wait=True: one look, then a timeout (no real waiting).
    with pytest.raises(TimeoutError) as info:
        registry.acquire(key, 0, wait=True, timeout=0)
    error = info.value
    assert isinstance(error, RateLimitTimeout)
    assert (error.key, error.limit, error.retry_after) == (key, RPM, 40.0)
    assert waiting(registry) == {}  # the waiter left the queue


def test_rate_limit_exceeded_message_and_attributes() -> None:
    error = RateLimitExceeded("openai:x", "tokens per minute", 1.5)
    assert (error.key, error.limit, error.retry_after) == ("openai:x", "tokens per minute", 1.5)
    assert "1.500" in str(error)
    never = RateLimitExceeded("openai:x", "tokens per minute", None)
    assert "never" in str(never)
    timeout = RateLimitTimeout("openai:x", "requests per minute", 3.0, "custom")
    assert str(timeout) == "custom"
    assert timeout.retry_after == 3.0


def test_per_day_limit_holds_after_cancelling_reservations_behind_traffic_over_the_limit(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    """Regression: per-day buckets were trimmed once the newer ones alone exceeded the limit, counting open
    reservations; cancelling those afterwards left the window without the trimmed traffic (admitted a fourth)."""
    key = registry.register_model(limited({"requestsPerDay": 3}))
    t0 = clock()
    registry.record_usage(key, 0, 0)  # one request at t0
    clock.set(t0 + 61)
    first, second = registry.acquire(key, 0), registry.acquire(key, 0)  # the limit is reached
    clock.set(t0 + 122)
    registry.record_usage(key, 0, 0)  # traffic beyond the limit (record_usage does not enforce it)
    clock.set(t0 + 183)
    registry.record_usage(key, 0, 0)
    first.cancel()
    second.cancel()
    # The last 24 h really hold the requests at t0, t0 + 122 and t0 + 183: one more would be a fourth.
    assert not allowed(registry, key, 0)
    with pytest.raises(RateLimitExceeded):
        registry.acquire(key, 0)


def test_tokens_per_day_holds_after_committing_less_behind_traffic_over_the_limit(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    """Regression: the same trimming with a commit of fewer tokens than reserved; the real traffic (40 + 0 + 50)
    never exceeds the limit, yet 50 more tokens were admitted where 10 fit."""
    key = registry.register_model(limited({"tokensPerDay": 100}))
    t0 = clock()
    registry.record_usage(key, 40, 0)
    clock.set(t0 + 61)
    reservation = registry.acquire(key, 60)  # 100 of 100
    clock.set(t0 + 122)
    registry.record_usage(key, 50, 0)  # counted with the open reservation: 150 (really used: 90)
    reservation.commit(0, input_tokens=0)
    # The last 24 h hold 40 + 50 = 90 tokens: at most 10 more fit.
    assert not allowed(registry, key, 11)


def test_cancelled_reservations_do_not_make_per_minute_windows_refuse_early(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    """Regression: cancelled reservations stayed in the per-minute logs as zero entries counting towards the entry
    cap (requestsPerMinute + 1), so the oldest real entry was merged into a cancelled one's later time and counted
    ~50 s too long (refused at t0 + 60 with retry_after 50.0)."""
    key = registry.register_model(limited({"requestsPerMinute": 3, "tokensPerMinute": 100}))
    t0 = clock()
    registry.acquire(key, 50).commit(0)  # a request of 50 tokens at t0
    clock.set(t0 + 50)
    first = registry.acquire(key, 0)
    clock.set(t0 + 51)
    second = registry.acquire(key, 0)
    first.cancel()  # not the newest reservation: it stays in the log as an entry of 0
    clock.set(t0 + 52)
    registry.acquire(key, 10).commit(0)
    second.cancel()
    clock.set(t0 + 53)
    registry.acquire(key, 10).commit(0)
    clock.set(t0 + 60)
    # The last 60 s hold the requests at t0 + 52 and t0 + 53 (20 tokens): a third of 80 tokens fits exactly.
    check = registry.check_rate_limit(key, 80)
    assert (check.allowed, check.reason, check.retry_after) == (True, None, None)
