"""``acquire(wait=True)`` and ``acquire_async``: first come first served, timeouts on the registry's clock, wake-ups.

Real threads (and a real event loop) against a FakeClock: with an injected clock a waiter looks again every ~50 ms of
real time, and commits, cancels, header updates and model changes wake it at once. Waiters are known to be queued
when their ``rate-limited`` event has been emitted (it is emitted after the waiter joined the queue). Every wait has a
deadline, so a deadlock fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, ModelNotFoundError
from noa_ai_provider.errors import RateLimitExceeded, RateLimitTimeout
from noa_ai_provider.reservation import Reservation
from noa_ai_provider.testing import EventRecorder, FakeClock, waiting

from .samples import hold, limited

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

RPM, TPM = "requests per minute", "tokens per minute"
DEADLINE = 3.0  # real seconds any single expected event may take; far above the ~50 ms polling
QUIET = 0.2  # real seconds to watch that something does NOT happen (four polls of the registry)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Call:
    """``fn()`` in a daemon thread; its result or exception, and when it finished."""

    def __init__(self, fn: Callable[[], Reservation], name: str = "call") -> None:
        self.result: Reservation | None = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.done = threading.Event()

        def body() -> None:
            try:
                self.result = fn()
            except BaseException as exc:
                self.error = exc
            finally:
                self.finished_at = time.monotonic()
                self.done.set()

        self.thread = threading.Thread(target=body, name=name, daemon=True)
        self.thread.start()

    def join(self, timeout: float = DEADLINE) -> None:
        assert self.done.wait(timeout), f"{self.thread.name} did not finish (deadlock?)"
        self.thread.join(timeout)

    def reservation(self, timeout: float = DEADLINE) -> Reservation:
        self.join(timeout)
        assert self.error is None, repr(self.error)
        assert self.result is not None
        return self.result


@pytest.fixture
def real_registry(tmp_path: Path, store: str) -> Iterator[EnhancedModelRegistry]:
    """A registry on the real clock (``time.time``): a waiter sleeps until the limit frees, unless woken."""
    with EnhancedModelRegistry(persistence_path=tmp_path / "real.json", auto_save=False, backend=store) as registry:
        yield registry


def queue(
    registry: EnhancedModelRegistry, events: EventRecorder, key: str, *args: Any, name: str, **kwargs: Any
) -> Call:
    """Start a waiting acquire and return once it is in the queue."""
    before = len(events.of("rate-limited"))
    call = Call(lambda: registry.acquire(key, *args, wait=True, **kwargs), name)
    wait_for(lambda: len(events.of("rate-limited")) > before or call.done.is_set(), f"{name} to queue")
    assert not call.done.is_set(), f"{name} was not queued: {call.result or call.error!r}"
    return call


# --------------------------------------------------------------------------- first come, first served


def test_a_big_waiter_is_served_before_small_ones_queued_after_it(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 100, "tokensPerMinute": 1_000}))
    hold = registry.acquire(key, 1_000)
    big = queue(registry, events, key, 1_000, name="big", timeout=1_000)
    small1 = queue(registry, events, key, 100, name="small1", timeout=1_000)
    small2 = queue(registry, events, key, 100, name="small2", timeout=1_000)
    try:
        hold.commit(0, input_tokens=100)  # 900 free now: both small ones would fit, the big one not
        assert registry.check_rate_limit(key, 100).allowed
        assert not small1.done.wait(QUIET)
        assert not small2.done.is_set()
        assert not big.done.is_set()
        # A call that does not wait does not overtake the queue either.
        with pytest.raises(RateLimitExceeded) as info:
            registry.acquire(key, 1)
        assert info.value.limit == TPM  # why the head of the queue waits
        assert info.value.retry_after == 60.0
        clock.advance(60)  # the 100 left: the big request fits and goes first
        first = big.reservation()
        assert first.input_tokens == 1_000
        assert not small1.done.wait(QUIET)  # it holds everything
        first.commit(0, input_tokens=900)  # 100 free: exactly one small request fits, the first queued
        second = small1.reservation()
        assert not small2.done.wait(QUIET)
        second.cancel()
        small2.reservation().cancel()
        assert waiting(registry) == {}
    finally:
        for reservation in (hold, big.result, small1.result, small2.result):
            if reservation is not None:
                reservation.cancel()
        for call in (big, small1, small2):
            call.join()


def test_many_waiters_are_admitted_in_arrival_order(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold = registry.acquire(key, 0)
    calls = [queue(registry, events, key, 0, name=f"waiter{n}", timeout=1_000) for n in range(6)]
    try:
        order = []
        for n in range(6):
            clock.advance(60)  # room for exactly one more request
            wait_for(lambda: any(c.done.is_set() for c in calls if c not in order), "an admission")
            admitted = [c for c in calls if c.done.is_set() and c not in order]
            assert len(admitted) == 1
            order.extend(admitted)
            assert admitted[0].reservation().timestamp == clock()
            assert calls.index(admitted[0]) == n
    finally:
        hold.cancel()
        for call in calls:
            if call.result is not None:
                call.result.cancel()
        for call in calls:
            call.join()


def test_a_non_waiting_call_is_admitted_when_nobody_waits(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold = registry.acquire(key, 0)
    waiter = queue(registry, events, key, 0, name="waiter", timeout=1_000)
    hold.cancel()
    waiter.reservation().cancel()
    assert waiting(registry) == {}
    registry.acquire(key, 0, wait=False).cancel()  # the queue is gone: no refusal
    # wait=True with room: admitted at once, without a rate-limited event.
    count = len(events.of("rate-limited"))
    registry.acquire(key, 0, wait=True, timeout=0).cancel()
    assert len(events.of("rate-limited")) == count


# --------------------------------------------------------------------------- timeouts


def test_timeout_is_measured_on_the_registry_clock(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    t0 = clock()
    held = registry.acquire(key, 0)
    patient = queue(registry, events, key, 0, name="patient", timeout=1_000)
    impatient = queue(registry, events, key, 0, name="impatient", timeout=30)
    try:
        assert not impatient.done.wait(QUIET)
        clock.advance(30)  # 30 s of the registry's clock: the impatient waiter's timeout
        impatient.join()
        error = impatient.error
        assert isinstance(error, RateLimitTimeout)
        assert isinstance(error, TimeoutError)
        assert (error.key, error.limit, error.retry_after) == (key, RPM, 30.0)
        assert "30" in str(error)
        # The impatient waiter left the queue: the next one is served when the minute is over.
        assert not patient.done.wait(QUIET)
        clock.set(t0 + 60)
        reservation = patient.reservation()
        assert reservation.timestamp == t0 + 60
        reservation.cancel()
        assert waiting(registry) == {}
        assert events.of("rate-limited")[-1]["limit"] == RPM
    finally:
        held.cancel()
        for call in (impatient, patient):
            call.join()


def test_timeout_also_bounds_real_time_under_a_frozen_clock(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    # A frozen (or slow) injected clock never keeps a waiter past `timeout` real seconds.
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    held = registry.acquire(key, 0)
    started = time.monotonic()
    try:
        with pytest.raises(RateLimitTimeout):
            registry.acquire(key, 0, wait=True, timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 5
        with pytest.raises(RateLimitTimeout):
            asyncio.run(registry.acquire_async(key, 0, wait=True, timeout=0.2))
    finally:
        held.cancel()


def test_a_timed_out_head_lets_the_waiters_behind_it_proceed(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    hold = registry.acquire(key, 500)
    big = queue(registry, events, key, 1_000, name="big", timeout=5)
    small = queue(registry, events, key, 100, name="small", timeout=1_000)
    try:
        assert not small.done.wait(QUIET)  # it would fit, but the big one is first
        clock.advance(6)  # the big one gives up; nothing else changed
        big.join()
        assert isinstance(big.error, RateLimitTimeout)
        assert big.error.limit == TPM
        small.reservation().cancel()
    finally:
        hold.cancel()
        for call in (big, small):
            call.join()


def test_a_waiter_timing_out_at_the_deadline_reports_the_limit(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 100}))
    hold(registry.acquire(key, 100))
    call = Call(lambda: registry.acquire(key, 50, wait=True, timeout=30), "waiter")
    wait_for(lambda: key in waiting(registry) or call.done.is_set(), "the waiter to queue")
    clock.advance(30)
    call.join()
    assert isinstance(call.error, RateLimitTimeout)
    assert (call.error.limit, call.error.retry_after) == (TPM, 30.0)
    assert waiting(registry) == {}


# --------------------------------------------------------------------------- wake-ups (real clock: no polling)


@pytest.mark.parametrize("settle", ["cancel", "commit"])
def test_cancel_or_commit_wakes_a_waiter_at_once(real_registry: EnhancedModelRegistry, settle: str) -> None:
    # On the real clock a waiter sleeps until the limit would free (here ~60 s): only a wake-up admits it sooner.
    events = EventRecorder().attach(real_registry)
    key = real_registry.register_model(limited({"requestsPerMinute": 10, "tokensPerMinute": 1_000}))
    hold = real_registry.acquire(key, 800)
    waiter = queue(real_registry, events, key, 500, name="waiter", timeout=120)
    assert not waiter.done.wait(QUIET)
    started = time.monotonic()
    if settle == "cancel":
        hold.cancel()
    else:
        hold.commit(0, input_tokens=400)
    reservation = waiter.reservation(timeout=2.0)
    assert waiter.finished_at is not None
    assert waiter.finished_at - started < 1.0
    reservation.cancel()


def test_raising_the_limit_wakes_a_waiter(real_registry: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(real_registry)
    key = real_registry.register_model(limited({"tokensPerMinute": 1_000}))
    hold = real_registry.acquire(key, 1_000)
    waiter = queue(real_registry, events, key, 500, name="waiter", timeout=120)
    real_registry.update_model(key, {"rateLimit": {"tokensPerMinute": 1_500}})
    waiter.reservation(timeout=2.0).cancel()
    hold.cancel()


def test_unregistering_the_model_wakes_its_waiters_with_model_not_found(
    real_registry: EnhancedModelRegistry,
) -> None:
    events = EventRecorder().attach(real_registry)
    key = real_registry.register_model(limited({"requestsPerMinute": 1}))
    hold = real_registry.acquire(key, 0)
    waiter = queue(real_registry, events, key, 0, name="waiter", timeout=120)
    real_registry.unregister_model(key)
    waiter.join(timeout=2.0)
    assert isinstance(waiter.error, ModelNotFoundError)
    hold.cancel()
    assert waiting(real_registry) == {}


def test_a_waiter_on_the_real_clock_is_admitted_when_the_window_frees(
    real_registry: EnhancedModelRegistry,
) -> None:
    # A provider's retry-after of 0.3 s blocks everything; the waiter sleeps until then, not longer.
    key = real_registry.register_model(limited({"requestsPerMinute": 100}))
    real_registry.update_rate_limits_from_headers(key, {"retry-after": "0.3"})
    started = time.monotonic()
    reservation = real_registry.acquire(key, 0, wait=True, timeout=10)
    assert 0.25 <= time.monotonic() - started < 2.0
    reservation.cancel()


# --------------------------------------------------------------------------- requests that can never fit


def test_a_request_that_can_never_fit_is_told_so_even_behind_waiters(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    """Regression: behind queued waiters every later caller heard the head's reason and retry_after."""
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 100}))
    hold = registry.acquire(key, 10)
    waiter = queue(registry, events, key, 10, name="waiter", timeout=1_000)
    try:
        with pytest.raises(RateLimitExceeded) as info:
            registry.acquire(key, 1_000)
        assert (info.value.limit, info.value.retry_after) == (TPM, None)
    finally:
        hold.cancel()
        waiter.reservation().cancel()


def test_a_waiting_request_that_can_never_fit_raises_at_once_even_behind_waiters(
    registry: EnhancedModelRegistry, events: EventRecorder
) -> None:
    """Regression: it waited (until its timeout, or until it reached the head of the queue) instead."""
    key = registry.register_model(limited({"requestsPerMinute": 1, "tokensPerMinute": 100}))
    hold = registry.acquire(key, 10)
    waiter = queue(registry, events, key, 10, name="waiter", timeout=1_000)
    too_big = Call(lambda: registry.acquire(key, 1_000, wait=True, timeout=1_000), "too big")
    try:
        too_big.join(timeout=1.0)
        assert type(too_big.error) is RateLimitExceeded
        assert (too_big.error.limit, too_big.error.retry_after) == (TPM, None)
    finally:
        hold.cancel()  # the waiter is admitted; then the too-big call reaches the head and raises
        waiter.reservation().cancel()
        too_big.join()


# --------------------------------------------------------------------------- asyncio


def run(coro: Any, timeout: float = 2 * DEADLINE) -> Any:
    """``asyncio.run(coro)`` in its own thread, so that even a loop blocked by a synchronous wait fails the test
    after ``timeout`` seconds instead of hanging it."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(asyncio.run(asyncio.wait_for(coro, timeout)))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name="event loop", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    assert not thread.is_alive(), "the event loop did not finish (blocked?)"
    if failure:
        raise failure[0]
    return outcome[0]


async def async_wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def test_acquire_async_waits_without_blocking_the_loop(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    t0 = clock()
    hold = registry.acquire(key, 0)

    async def main() -> tuple[Reservation, int]:
        ticks = 0
        task = asyncio.create_task(registry.acquire_async(key, 0, wait=True, timeout=1_000))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 1, "the async waiter to queue")
        started = time.monotonic()
        while time.monotonic() - started < QUIET:  # the loop keeps running while the task waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert not task.done()
        # Another thread moves the clock; the waiter notices on its own (polling) without blocking us.
        threading.Thread(target=clock.advance, args=(60,)).start()
        reservation = await task
        return reservation, ticks

    reservation, ticks = run(main())
    assert ticks >= 10
    assert reservation.timestamp == t0 + 60
    reservation.cancel()
    hold.cancel()
    assert waiting(registry) == {}


def test_acquire_async_is_woken_by_a_cancel_at_once(real_registry: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(real_registry)
    key = real_registry.register_model(limited({"tokensPerMinute": 1_000}))
    hold = real_registry.acquire(key, 1_000)

    async def main() -> float:
        task = asyncio.create_task(real_registry.acquire_async(key, 100, wait=True, timeout=120))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 1, "the async waiter to queue")
        await asyncio.sleep(QUIET)
        assert not task.done()
        started = time.monotonic()
        # Cancelled from another thread: the wake-up crosses into the loop.
        threading.Thread(target=hold.cancel).start()
        reservation = await task
        reservation.cancel()
        return time.monotonic() - started

    assert run(main()) < 1.0


def test_async_waiters_are_served_first_come_first_served(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 100, "tokensPerMinute": 1_000}))
    hold = registry.acquire(key, 1_000)

    async def main() -> list[str]:
        order: list[str] = []
        held: list[Reservation] = []

        async def take(name: str, tokens: int) -> None:
            reservation = await registry.acquire_async(key, tokens, wait=True, timeout=1_000)
            order.append(name)
            held.append(reservation)

        tasks = []
        for n, (name, tokens) in enumerate([("big", 1_000), ("small1", 100), ("small2", 100)]):
            tasks.append(asyncio.create_task(take(name, tokens)))
            await async_wait_for(lambda n=n: len(events.of("rate-limited")) == n + 1, f"{name} to queue")
        hold.commit(0, input_tokens=100)  # the small ones would fit, the big one is first
        await asyncio.sleep(QUIET)
        assert order == []
        clock.advance(60)
        await async_wait_for(lambda: order == ["big"], "the big request")
        await asyncio.sleep(QUIET)
        assert order == ["big"]
        held[0].commit(0, input_tokens=900)  # room for one small request: the first queued
        await async_wait_for(lambda: len(order) == 2, "a small request")
        await asyncio.sleep(QUIET)
        assert order == ["big", "small1"]
        held[1].cancel()
        await asyncio.gather(*tasks)
        for reservation in held:
            reservation.cancel()
        return order

    assert run(main()) == ["big", "small1", "small2"]
    assert waiting(registry) == {}


def test_thread_and_async_waiters_share_one_queue(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold = registry.acquire(key, 0)
    thread_waiter = queue(registry, events, key, 0, name="thread", timeout=1_000)

    async def main() -> Reservation:
        task = asyncio.create_task(registry.acquire_async(key, 0, wait=True, timeout=1_000))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 2, "the async waiter to queue")
        hold.cancel()  # one request free: the thread came first
        first = await asyncio.to_thread(thread_waiter.reservation)
        await asyncio.sleep(QUIET)
        assert not task.done()
        first.cancel()
        return await task

    run(main()).cancel()
    thread_waiter.join()


def test_acquire_async_times_out_on_the_registry_clock(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold = registry.acquire(key, 0)

    async def main() -> BaseException:
        task = asyncio.create_task(registry.acquire_async(key, 0, wait=True, timeout=5))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 1, "the async waiter to queue")
        await asyncio.sleep(QUIET)
        assert not task.done()
        clock.advance(5)
        with pytest.raises(RateLimitTimeout) as info:
            await task
        return info.value

    error = run(main())
    assert isinstance(error, TimeoutError)
    assert (error.limit, error.retry_after) == (RPM, 55.0)
    assert waiting(registry) == {}
    hold.cancel()


def test_acquire_async_without_wait_raises_at_once(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold = registry.acquire(key, 0)
    with pytest.raises(RateLimitExceeded) as info:
        run(registry.acquire_async(key, 0))
    assert (info.value.limit, info.value.retry_after) == (RPM, 60.0)
    hold.cancel()
    run(registry.acquire_async(key, 0)).cancel()


def test_cancelling_an_async_waiter_leaves_the_queue(
    registry: EnhancedModelRegistry, events: EventRecorder, clock: FakeClock
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    hold = registry.acquire(key, 500)

    async def main() -> Reservation:
        big = asyncio.create_task(registry.acquire_async(key, 1_000, wait=True))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 1, "the big waiter to queue")
        small = asyncio.create_task(registry.acquire_async(key, 100, wait=True))
        await async_wait_for(lambda: len(events.of("rate-limited")) == 2, "the small waiter to queue")
        await asyncio.sleep(QUIET)
        assert not small.done()
        big.cancel()  # the head goes away: the small one fits and is next
        with pytest.raises(asyncio.CancelledError):
            await big
        return await small

    run(main()).cancel()
    hold.cancel()
    assert waiting(registry) == {}
