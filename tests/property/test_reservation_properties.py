"""Reservations against an exact oracle on random traces (injected clock), and under 8 real threads.

The oracle keeps every request that counts: recorded ones and committed reservations with their real amounts, at the
time they were recorded or reserved, and open reservations with their reserved amounts. At ``now`` a request counts
in a window of ``w`` seconds while ``now - t < w``. A request is admitted iff one more request and its tokens keep
every configured limit.

- (a) Per-minute limits (requests, tokens, input tokens, output tokens): every ``acquire`` and ``check_rate_limit``
  decision is IDENTICAL to the oracle, with the same ``retry_after`` (to 1e-6 s) and a binding ``limit``.
- (b) Per-day limits may refuse early (one-minute buckets), never late: nothing is admitted that the exact 24 h
  oracle refuses, and (without per-minute limits) everything the oracle with a 24 h + 60 s window admits is.
- (c) 8 threads acquire and commit (real time): offline, no trailing 60 s window of the committed history, each
  request counted at its reservation time, holds more than any per-minute limit.

Times start at 1.7e9 s, where every double is a multiple of 2**-22, so differences of times are exact and the
oracle's ``now - t < 60`` is the implementation's ``t > now - 60`` (see test_ratelimit_properties.py).
"""

from __future__ import annotations

import contextlib
import decimal
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import RateLimitExceeded
from noa_ai_provider.ratelimit import DAY, DAY_BUCKET, MINUTE
from noa_ai_provider.reservation import Reservation
from noa_ai_provider.testing import waiting

from ..conftest import STORES, fresh, store_id

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

START = 1_700_000_000.0
ABS = 1e-6
PIN, POUT = Decimal("0.01"), Decimal("0.03")

# config field -> (reason, what it counts, window)
LIMITS: dict[str, tuple[str, str, float]] = {
    "requestsPerMinute": ("requests per minute", "requests", MINUTE),
    "tokensPerMinute": ("tokens per minute", "tokens", MINUTE),
    "inputTokensPerMinute": ("input tokens per minute", "input", MINUTE),
    "outputTokensPerMinute": ("output tokens per minute", "output", MINUTE),
    "requestsPerDay": ("requests per day", "requests", DAY),
    "tokensPerDay": ("tokens per day", "tokens", DAY),
}


def note(text: str) -> None:
    """``hypothesis.event`` when running under Hypothesis (the traces are also replayed by hand)."""
    if currently_in_test_context():
        event(text)


def cost(i: int, o: int) -> Decimal:
    with decimal.localcontext(prec=60):
        return (i * PIN + o * POUT) / 1000


# --------------------------------------------------------------------------- the oracle


@dataclass(eq=False)  # compared by identity: two requests may look alike
class Request:
    ts: float
    inp: int
    out: int

    def amount(self, kind: str) -> int:
        if kind == "requests":
            return 1
        if kind == "tokens":
            return self.inp + self.out
        return self.inp if kind == "input" else self.out


@dataclass
class Oracle:
    limits: dict[str, int]
    requests: list[Request] = field(default_factory=list)  # in time order; cancelled ones are removed

    def add(self, now: float, inp: int, out: int) -> Request:
        assert not self.requests or now >= self.requests[-1].ts
        request = Request(now, inp, out)
        self.requests.append(request)
        return request

    def waits(self, now: float, inp: int, out: int, day_window: float = DAY) -> dict[str, float | None]:
        """Per configured limit (by reason): 0 when one more request fits now, else seconds until it does (None:
        never, the request alone is over the limit)."""
        out_waits: dict[str, float | None] = {}
        new = Request(now, inp, out)
        for name, limit in self.limits.items():
            reason, kind, window = LIMITS[name]
            if window == DAY:
                window = day_window
            extra = new.amount(kind)
            if extra > limit:
                out_waits[reason] = None
                continue
            live = [(r.ts, r.amount(kind)) for r in self.requests if now - r.ts < window]
            total = sum(k for _, k in live)
            if total + extra <= limit:
                out_waits[reason] = 0.0
                continue
            freed = 0
            for t, k in live:
                freed += k
                if total - freed + extra <= limit:
                    out_waits[reason] = t + window - now
                    break
        return out_waits

    def allows(self, now: float, inp: int, out: int, day_window: float = DAY) -> bool:
        return all(w == 0.0 for w in self.waits(now, inp, out, day_window).values())


def overall(waits: dict[str, float | None]) -> float | None:
    if any(w is None for w in waits.values()):
        return None
    return max((w for w in waits.values() if w is not None), default=0.0)


def assert_same_decision(
    waits: dict[str, float | None], allowed: bool, reason: str | None, retry_after: float | None, context: Any
) -> None:
    expected_allowed = all(w == 0.0 for w in waits.values())
    assert allowed == expected_allowed, (context, waits, reason, retry_after)
    if allowed:
        return
    expected = overall(waits)
    if expected is None:
        assert retry_after is None, (context, waits, retry_after)
        assert waits[reason] is None if reason is not None else False, (context, waits, reason)
    else:
        assert retry_after is not None, (context, waits)
        assert retry_after == pytest.approx(expected, abs=ABS), (context, waits, reason, retry_after)
        binding = {name for name, w in waits.items() if w is not None and w == pytest.approx(expected, abs=ABS)}
        assert reason in binding, (context, waits, reason)


# --------------------------------------------------------------------------- the registry side


def make_registry(
    tmp_path: Path, rate_limit: dict[str, int], backend: str
) -> tuple[EnhancedModelRegistry, str, list[float]]:
    """A registry on ``backend`` (the test's store) with one model ``limited`` of ``rate_limit``, and its clock."""
    clock = [START]
    # Reservations may stay open across simulated days here: expiry is tested elsewhere (test_reservation_life).
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "registry.json",
        auto_save=False,
        clock=lambda: clock[0],
        reservation_timeout=400 * 86_400.0,
        backend=fresh(backend),
    )
    key = registry.register_model(
        {
            "id": "limited",
            "name": "Limited",
            "provider": "openai",
            "version": "1.0.0",
            "cost": {"inputTokens": str(PIN), "outputTokens": str(POUT)},
            "rateLimit": rate_limit,
        }
    )
    return registry, key, clock


Step = tuple[str, float, int, int]  # (action, number, a, b); unused fields are 0


class Trace:
    """Applies steps to the registry and the oracle side by side; ``judge`` compares every decision."""

    def __init__(
        self,
        registry: EnhancedModelRegistry,
        key: str,
        clock: list[float],
        oracle: Oracle,
        judge: Callable[[float, int, int, bool, str | None, float | None, str], None],
    ) -> None:
        self.registry, self.key, self.clock, self.oracle, self.judge = registry, key, clock, oracle, judge
        self.open: list[tuple[Reservation, Request]] = []
        self.last_wait: float | None = None  # the latest retry_after seen, for "wait" steps
        self.committed: list[tuple[Reservation, Decimal]] = []

    def run(self, steps: list[Step]) -> None:
        for n, (action, number, a, b) in enumerate(steps):
            getattr(self, action)(number, a, b, f"step {n}: {action}")
        for reservation, _request in self.open:  # a reservation left open would be reported when collected
            reservation.cancel()

    def advance(self, seconds: float, _a: int, _b: int, _context: str) -> None:
        self.clock[0] += seconds

    def wait(self, _number: float, _a: int, _b: int, _context: str) -> None:
        """Advance by the latest retry_after: lands exactly on the instants when entries expire."""
        if self.last_wait is not None:
            self.clock[0] += self.last_wait
            self.last_wait = None

    def acquire(self, _number: float, inp: int, out: int, context: str) -> None:
        now = self.clock[0]
        try:
            reservation = self.registry.acquire(self.key, inp, out)
        except RateLimitExceeded as exc:
            error = exc
        else:
            error = None
        if error is not None:
            assert error.key == self.key
            self.last_wait = error.retry_after
            self.judge(now, inp, out, False, error.limit, error.retry_after, context)
            note("acquire: refused")
            return
        self.judge(now, inp, out, True, None, None, context)
        assert reservation.timestamp == now
        self.open.append((reservation, self.oracle.add(now, inp, out)))
        note("acquire: admitted")

    def check(self, _number: float, inp: int, out: int, context: str) -> None:
        now = self.clock[0]
        result = self.registry.check_rate_limit(self.key, inp + out, output_tokens=out)
        if result.allowed:
            assert (result.reason, result.retry_after) == (None, None)
        else:
            self.last_wait = result.retry_after
        self.judge(now, inp, out, result.allowed, result.reason, result.retry_after, context)

    def commit(self, index: float, inp: int, out: int, _context: str) -> None:
        if not self.open:
            return
        reservation, request = self.open.pop(int(index) % len(self.open))
        got = reservation.commit(out, input_tokens=inp)
        assert got == cost(inp, out)
        request.inp, request.out = inp, out  # corrected at the reservation's time
        self.committed.append((reservation, got))

    def recommit(self, index: float, inp: int, out: int, _context: str) -> None:
        if not self.committed:
            return
        reservation, first = self.committed[int(index) % len(self.committed)]
        assert reservation.commit(out, input_tokens=inp) == first  # idempotent: records nothing
        reservation.cancel()  # a no-op after commit

    def cancel(self, index: float, _a: int, _b: int, _context: str) -> None:
        if not self.open:
            return
        reservation, request = self.open.pop(int(index) % len(self.open))
        reservation.cancel()
        self.oracle.requests = [r for r in self.oracle.requests if r is not request]

    def record(self, _number: float, inp: int, out: int, _context: str) -> None:
        self.registry.record_usage(self.key, inp, out)
        self.oracle.add(self.clock[0], inp, out)


# --------------------------------------------------------------------------- strategies

small_advance = st.one_of(
    st.floats(min_value=0.0, max_value=30.0, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=30 * 16).map(lambda n: n / 16),  # lands exactly on 60 s ages often
    st.sampled_from([0.0, 0.5, 1.0, 59.9, 60.0, 60.1]),
)
tokens = st.one_of(st.integers(min_value=0, max_value=400), st.sampled_from([0, 1, 1_000, 2_000]))
index = st.integers(min_value=0, max_value=50).map(float)


def steps_strategy(advance: st.SearchStrategy[float]) -> st.SearchStrategy[list[Step]]:
    choices = [
        st.tuples(st.just("advance"), advance, st.just(0), st.just(0)),
        st.tuples(st.just("wait"), st.just(0.0), st.just(0), st.just(0)),
        st.tuples(st.just("acquire"), st.just(0.0), tokens, tokens),
        st.tuples(st.just("acquire"), st.just(0.0), tokens, tokens),
        st.tuples(st.just("check"), st.just(0.0), tokens, tokens),
        st.tuples(st.just("commit"), index, tokens, tokens),
        st.tuples(st.just("recommit"), index, tokens, tokens),
        st.tuples(st.just("cancel"), index, st.just(0), st.just(0)),
        st.tuples(st.just("record"), st.just(0.0), tokens, tokens),
    ]
    return st.lists(st.one_of(choices), min_size=1, max_size=60)


@st.composite
def minute_limits(draw: st.DrawFn) -> dict[str, int]:
    out = {
        "requestsPerMinute": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=8))),
        "tokensPerMinute": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=2_500))),
        "inputTokensPerMinute": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=1_500))),
        "outputTokensPerMinute": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=1_500))),
    }
    limits = {k: v for k, v in out.items() if v is not None}
    if not limits:
        limits["requestsPerMinute"] = draw(st.integers(min_value=1, max_value=8))
    return limits


@st.composite
def day_limits(draw: st.DrawFn) -> dict[str, int]:
    out = {
        "requestsPerDay": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=8))),
        "tokensPerDay": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=3_000))),
    }
    limits = {k: v for k, v in out.items() if v is not None}
    if not limits:
        limits["requestsPerDay"] = draw(st.integers(min_value=1, max_value=8))
    return limits


day_advance = st.one_of(
    small_advance,
    st.floats(min_value=0.0, max_value=4_000.0, allow_nan=False, allow_infinity=False),
    st.floats(min_value=80_000.0, max_value=90_000.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([86_399.9, 86_400.0, 86_400.1, 86_430.0, 86_459.9, 86_460.0, 86_460.1]),
)


# --------------------------------------------------------------------------- (a) per-minute: identical to the oracle


def run_minute_trace(tmp_path: Path, backend: str, limits: dict[str, int], steps: list[Step]) -> None:
    registry, key, clock = make_registry(tmp_path, limits, backend)
    oracle = Oracle(limits)

    def judge(
        now: float, inp: int, out: int, allowed: bool, reason: str | None, retry_after: float | None, context: str
    ) -> None:
        waits = oracle.waits(now, inp, out)
        assert_same_decision(waits, allowed, reason, retry_after, (context, now - START, inp, out))
        if not allowed and retry_after is not None:
            # Sound and tight: the oracle admits at now + retry_after (with no new traffic) and not just before.
            assert oracle.allows(now + retry_after, inp, out)
            assert not oracle.allows(now + retry_after - 1e-3, inp, out)

    trace = Trace(registry, key, clock, oracle, judge)
    trace.run(steps)
    # In the end every open reservation is settled and the usage counters saw exactly the committed requests.
    for reservation, _ in trace.open:
        reservation.cancel()
    stats = registry.get_usage_stats(key)
    assert stats is not None
    still_open = {id(request) for _, request in trace.open}
    committed = [r for r in oracle.requests if id(r) not in still_open]
    assert stats.request_count == len(committed)
    assert stats.total_input_tokens == sum(r.inp for r in committed)
    assert stats.total_output_tokens == sum(r.out for r in committed)
    registry.close()


# Regression: the per-minute token and request logs hold at most ``requestsPerMinute + 1`` entries, merging the two
# oldest settled ones beyond that. Cancelled reservations stayed in the logs as entries of amount 0 that counted
# towards that cap, so a real request was merged into a cancelled one's later time and counted longer than 60 s.
CANCEL_MERGE_EXAMPLE: list[Step] = [
    ("acquire", 0.0, 50, 0),
    ("commit", 0.0, 50, 0),  # 50 tokens at t0
    ("advance", 50.0, 0, 0),
    ("acquire", 0.0, 0, 0),  # r1 at t0 + 50
    ("advance", 1.0, 0, 0),
    ("acquire", 0.0, 0, 0),  # r2 at t0 + 51
    ("cancel", 0.0, 0, 0),  # r1 (not the newest): a zero entry
    ("advance", 1.0, 0, 0),
    ("acquire", 0.0, 10, 0),  # r3 at t0 + 52
    ("commit", 1.0, 10, 0),
    ("cancel", 0.0, 0, 0),  # r2
    ("advance", 1.0, 0, 0),
    ("acquire", 0.0, 10, 0),  # r4 at t0 + 53: the log is over its cap only if zero entries count
    ("commit", 0.0, 10, 0),
    ("advance", 7.0, 0, 0),  # t0 + 60: only r3 and r4 are in the window
    ("check", 0.0, 80, 0),
]


@pytest.mark.parametrize("store", STORES, ids=store_id)  # no fixture in a @given test
@SETTINGS
@given(limits=minute_limits(), steps=steps_strategy(small_advance))
@example(limits={"requestsPerMinute": 3, "tokensPerMinute": 100}, steps=CANCEL_MERGE_EXAMPLE)
def test_per_minute_decisions_match_the_oracle_exactly(
    tmp_path: Path, store: str, limits: dict[str, int], steps: list[Step]
) -> None:
    run_minute_trace(tmp_path, store, limits, steps)


def test_the_cancel_merge_example_against_the_oracle_by_hand(tmp_path: Path, store: str) -> None:
    """CANCEL_MERGE_EXAMPLE by hand: the oracle admits at t0 + 60 and so must the registry."""
    oracle = Oracle({"requestsPerMinute": 3, "tokensPerMinute": 100})
    oracle.add(START, 50, 0)
    oracle.add(START + 52, 10, 0)
    oracle.add(START + 53, 10, 0)
    assert oracle.allows(START + 60, 80, 0)
    assert not oracle.allows(START + 59, 80, 0)
    registry, key, clock = make_registry(tmp_path, {"requestsPerMinute": 3, "tokensPerMinute": 100}, store)
    Trace(registry, key, clock, Oracle(dict(oracle.limits)), lambda *args: None).run(CANCEL_MERGE_EXAMPLE[:-1])
    assert clock[0] == START + 60
    result = registry.check_rate_limit(key, 80)
    assert (result.allowed, result.reason, result.retry_after) == (True, None, None)
    registry.close()


# --------------------------------------------------------------------------- (b) per-day: early, never late


def run_day_trace(tmp_path: Path, backend: str, limits: dict[str, int], steps: list[Step]) -> None:
    registry, key, clock = make_registry(tmp_path, limits, backend)
    oracle = Oracle(limits)
    wide = DAY + DAY_BUCKET + 1e-3  # how early per-day limits may refuse: one bucket (plus float slack)

    def judge(
        now: float, inp: int, out: int, allowed: bool, reason: str | None, retry_after: float | None, context: str
    ) -> None:
        exact = oracle.waits(now, inp, out)
        if allowed:
            # Never late: admitted only when the exact 24 h oracle admits.
            assert all(w == 0.0 for w in exact.values()), (context, now - START, inp, out, exact)
            return
        if oracle.allows(now, inp, out, day_window=wide):
            raise AssertionError(("refused more than one bucket early", context, now - START, inp, out, exact))
        note(f"day: refused by {reason}")
        expected = overall(exact)
        if expected is None:
            assert retry_after is None
        else:
            # Early, never late: the wait is at least the exact one, at most one bucket more.
            assert retry_after is not None
            assert expected - ABS <= retry_after <= expected + DAY_BUCKET + ABS, (context, exact, retry_after)

    trace = Trace(registry, key, clock, oracle, judge)
    trace.run(steps)
    registry.close()


# Regression: recorded traffic in a later bucket made the per-day window drop its oldest bucket (the newer buckets
# alone exceeded the limit, counting the open reservation); the reservation was then committed with fewer tokens,
# and the window had forgotten the dropped bucket (admitted 11 tokens with 90 of tokensPerDay 100 used).
DAY_TRIM_EXAMPLE: list[Step] = [
    ("record", 0.0, 40, 0),
    ("advance", 61.0, 0, 0),
    ("acquire", 0.0, 60, 0),
    ("advance", 61.0, 0, 0),
    ("record", 0.0, 50, 0),
    ("commit", 0.0, 0, 0),
    ("acquire", 0.0, 11, 0),  # the last 24 h hold 90 tokens: 11 more would be 101
]


@pytest.mark.parametrize("store", STORES, ids=store_id)  # no fixture in a @given test
@SETTINGS
@given(limits=day_limits(), steps=steps_strategy(day_advance))
@example(limits={"tokensPerDay": 100}, steps=DAY_TRIM_EXAMPLE)
def test_per_day_limits_never_admit_late(tmp_path: Path, store: str, limits: dict[str, int], steps: list[Step]) -> None:
    run_day_trace(tmp_path, store, limits, steps)


# --------------------------------------------------------------------------- (c) 8 threads, checked offline

THREADS = 8
RUN_SECONDS = 1.5
LIMITS_C = {
    "requestsPerMinute": 50,
    "tokensPerMinute": 20_000,
    "inputTokensPerMinute": 14_000,
    "outputTokensPerMinute": 9_000,
}


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def hammer(registry: EnhancedModelRegistry, key: str) -> tuple[list[tuple[float, int, int]], dict[str, int]]:
    """8 threads acquire (waiting or not), then commit (at most what they reserved), cancel, or fail inside a
    ``with`` block. Returns the committed history ``(reserved at, input, output)`` and what happened."""
    history: list[tuple[float, int, int]] = []
    counts = {"admitted": 0, "refused": 0, "timeouts": 0, "cancelled": 0, "failed": 0}
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)
    stop_at = [0.0]

    class Failure(Exception):
        pass

    def worker(n: int) -> None:
        rng = random.Random(4_000 + n)
        try:
            barrier.wait(timeout=10)
            while time.monotonic() < stop_at[0]:
                inp = rng.choice((0, rng.randrange(1, 200), rng.randrange(200, 2_500)))
                out = rng.choice((0, rng.randrange(1, 500), rng.randrange(500, 2_000)))
                wait = rng.random() < 0.4
                try:
                    if wait:
                        reservation = registry.acquire(key, inp, out, wait=True, timeout=rng.uniform(0.0, 0.05))
                    else:
                        reservation = registry.acquire(key, inp, out)
                except RateLimitExceeded as error:
                    with lock:
                        counts["timeouts" if wait else "refused"] += 1
                    if error.retry_after is None:
                        assert inp + out > LIMITS_C["tokensPerMinute"] or inp > 14_000 or out > 9_000
                    continue
                ts = reservation.timestamp
                fate = rng.random()
                if fate < 0.15:
                    reservation.cancel()
                    with lock:
                        counts["cancelled"] += 1
                elif fate < 0.25:
                    with contextlib.suppress(Failure), reservation:
                        raise Failure  # a failed request: released, counted at $0
                    assert reservation.state == "committed"
                    assert reservation.cost == 0
                    with lock:
                        counts["failed"] += 1
                else:
                    used_in = rng.randint(0, inp)
                    used_out = rng.randint(0, out)
                    assert reservation.commit(used_out, input_tokens=used_in) == cost(used_in, used_out)
                    with lock:
                        counts["admitted"] += 1
                        history.append((ts, used_in, used_out))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    stop_at[0] = time.monotonic() + RUN_SECONDS + 0.5  # the barrier releases them together, well before this
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not [t for t in threads if t.is_alive()], "threads did not finish (deadlock?)"
    assert not errors, errors
    return history, counts


def check_history_offline(history: list[tuple[float, int, int]]) -> None:
    """No trailing 60 s window (ending at any request's time) holds more than a per-minute limit."""
    history = sorted(history)
    start = 0
    requests = tokens = inp_sum = out_sum = 0
    for ts, inp, out in history:
        requests += 1
        tokens += inp + out
        inp_sum += inp
        out_sum += out
        while history[start][0] <= ts - MINUTE:  # the registry's cutoff: an entry 60 s old no longer counts
            _, i, o = history[start]
            requests -= 1
            tokens -= i + o
            inp_sum -= i
            out_sum -= o
            start += 1
        assert requests <= LIMITS_C["requestsPerMinute"], (ts, requests)
        assert tokens <= LIMITS_C["tokensPerMinute"], (ts, tokens)
        assert inp_sum <= LIMITS_C["inputTokensPerMinute"], (ts, inp_sum)
        assert out_sum <= LIMITS_C["outputTokensPerMinute"], (ts, out_sum)


def new_model(registry: EnhancedModelRegistry) -> str:
    return registry.register_model(
        {
            "id": "shared",
            "name": "Shared",
            "provider": "openai",
            "version": "1.0.0",
            "cost": {"inputTokens": str(PIN), "outputTokens": str(POUT)},
            "rateLimit": LIMITS_C,
        }
    )


@pytest.mark.usefixtures("frequent_thread_switches")
def test_eight_threads_never_exceed_a_per_minute_limit(tmp_path: Path, store: str) -> None:
    with EnhancedModelRegistry(  # on time.time
        persistence_path=tmp_path / "r.json", auto_save=False, backend=fresh(store)
    ) as registry:
        key = new_model(registry)
        history, counts = hammer(registry, key)
        check_history_offline(history)
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert stats.request_count == len(history) + counts["failed"]  # failed requests count, at $0
        assert stats.failed_requests == counts["failed"]
        assert stats.total_input_tokens == sum(i for _, i, _ in history)
        assert stats.total_output_tokens == sum(o for _, _, o in history)
        assert waiting(registry) == {}
    # The limits really were reached: some calls were refused or timed out, many were admitted.
    assert counts["refused"] + counts["timeouts"] > 0, counts
    assert len(history) >= 10, counts


@pytest.mark.usefixtures("frequent_thread_switches")
def test_eight_threads_on_a_fast_clock_never_exceed_a_per_minute_limit(tmp_path: Path, store: str) -> None:
    """The same on a clock running 40 times faster than real time, so the windows slide during the run."""
    base, origin = START, time.monotonic()
    lock = threading.Lock()
    last = [base]

    def fast_clock() -> float:
        with lock:  # monotonic across threads
            last[0] = max(last[0], base + (time.monotonic() - origin) * 40)
            return last[0]

    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=fast_clock, backend=fresh(store)
    ) as registry:
        key = new_model(registry)
        history, counts = hammer(registry, key)
        check_history_offline(history)
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert stats.request_count == len(history) + counts["failed"]
    span = max(t for t, _, _ in history) - min(t for t, _, _ in history)
    assert span > MINUTE, span  # more than one window's worth of history
    assert len(history) > LIMITS_C["requestsPerMinute"], counts  # the windows slid: more than one minute's quota
