"""Waiting across processes on the Redis store: a big request waiting in one registry is not starved by a stream of
small ones from another registry (another process: each registry has its own wait queue, only Redis is shared); it
is admitted within two windows. Two registries on one namespace stand for two processes; a FakeClock shared by
them drives the windows (``clock=registry``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from noa_ai_provider import EnhancedModelRegistry, RateLimitExceeded
from noa_ai_provider.testing import FakeClock

from ..conftest import fresh
from ..samples import limited

LIMITS = {"requestsPerMinute": 1_000, "tokensPerMinute": 300}
SMALL = 20  # tokens of each request of the stream
BIG = 250  # tokens of the waiting request: fits only when the stream leaves room for it


def _pair(tmp_path: Path, clock: FakeClock) -> tuple[EnhancedModelRegistry, EnhancedModelRegistry, str]:
    url = fresh("redis://")
    a = EnhancedModelRegistry(persistence_path=tmp_path / "a.json", auto_save=False, clock=clock, backend=url)
    b = EnhancedModelRegistry(persistence_path=tmp_path / "b.json", auto_save=False, clock=clock, backend=url)
    key = a.register_model(limited(LIMITS))
    b.register_model(limited(LIMITS))
    return a, b, key


def _stream(b: EnhancedModelRegistry, key: str, clock: FakeClock, seconds: int, done: threading.Event) -> int:
    """One small request a second (when admitted) from registry ``b`` for ``seconds`` of the clock; the seconds it
    took until ``done`` was set (or ``seconds``)."""
    for second in range(seconds):
        if done.is_set():
            return second
        for _ in range(3):  # as many as fit: the stream takes every bit of room it is given
            try:
                b.acquire(key, SMALL).commit(0)
            except RateLimitExceeded:
                break
        time.sleep(0.06)  # real time for the waiter's thread to look again (it polls every 0.05 s: a FakeClock)
        clock.advance(1)
    return seconds


def test_a_big_waiter_is_admitted_within_two_windows_despite_a_stream_from_another_process(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)
    a, b, key = _pair(tmp_path, clock)
    admitted: list[float] = []
    done = threading.Event()

    def big() -> None:
        with a.acquire(key, BIG, wait=True, timeout=600) as reservation:
            admitted.append(reservation.timestamp)
            reservation.commit(0)
        done.set()

    _stream(b, key, clock, 20, threading.Event())  # the stream fills the window before the big request comes
    start = clock()
    waiter = threading.Thread(target=big)
    waiter.start()
    try:
        _stream(b, key, clock, 240, done)
    finally:
        done.set()
        waiter.join(10)
    assert admitted, "the big request was starved for four windows"
    assert admitted[0] - start <= 120  # within two windows of its first attempt
    a.close()
    b.close()


def test_without_waiting_the_same_stream_starves_the_big_request(tmp_path: Path) -> None:
    """The control: polled with wait=False, the big request never leaves a claim, and the stream takes all the room
    (which is why waiting callers queue in Redis)."""
    clock = FakeClock(1_700_000_000.0)
    a, b, key = _pair(tmp_path, clock)
    _stream(b, key, clock, 20, threading.Event())
    admitted = 0
    for _ in range(180):
        for _ in range(3):
            try:
                b.acquire(key, SMALL).commit(0)
            except RateLimitExceeded:
                break
        try:
            a.acquire(key, BIG).commit(0)
            admitted += 1
        except RateLimitExceeded:
            pass
        clock.advance(1)
    assert admitted == 0
    a.close()
    b.close()


def test_a_waiter_that_gives_up_holds_nobody_up(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)
    a, b, key = _pair(tmp_path, clock)
    b.acquire(key, 300).commit(0)  # the window is full for a minute
    with pytest.raises(RateLimitExceeded):
        a.acquire(key, BIG, wait=True, timeout=0.2)  # refused, then gives up: its claim goes with it
    clock.advance(60)
    b.acquire(key, SMALL).commit(0)  # not queued behind a waiter that left
    a.close()
    b.close()


def test_a_cancel_in_another_process_wakes_a_waiter_at_once(tmp_path: Path) -> None:
    """Real clocks: a waiter whose request fits only once another process gives its reservation back is admitted
    as soon as that happens (the store publishes freed capacity), not when the window's minute is over."""
    url = fresh("redis://").replace("&clock=registry", "")  # the server's clock, as in production
    a = EnhancedModelRegistry(persistence_path=tmp_path / "a.json", auto_save=False, backend=url)
    b = EnhancedModelRegistry(persistence_path=tmp_path / "b.json", auto_save=False, backend=url)
    key = a.register_model(limited(LIMITS))
    b.register_model(limited(LIMITS))
    held = b.acquire(key, 300)  # the whole token window, for now
    admitted: list[float] = []

    def waiter() -> None:
        with a.acquire(key, BIG, wait=True, timeout=20) as reservation:
            admitted.append(time.monotonic())
            reservation.commit(0)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)  # the waiter was refused (retry_after: about 60 s) and sleeps
    assert not admitted
    cancelled = time.monotonic()
    held.cancel()
    thread.join(25)
    assert admitted, "the waiter slept through the cancel"
    assert admitted[0] - cancelled < 2.0
    a.close()
    b.close()
